"""What the benchmark scripts share: the machine line and writing a result table (Markdown + JSON)."""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time


def machine() -> str:
    import tensorflow as tf

    return f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, TF {tf.__version__}"


def write_results(out: str, lines: list, data: dict) -> str:
    """Print the Markdown ``lines``, write them to ``out`` and ``data`` to the .json next to it."""
    text = "\n".join(lines) + "\n"
    print(text)
    with open(out, "w") as f:
        f.write(text)
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump(data, f, indent=1)
    return text


def build(name):
    """A Keras application with random weights (weights=None: nothing to download) and its spec."""
    import keras_apps

    return keras_apps.build(name, weights=None), keras_apps.get(name)


def timings(fn, repeats, warmup=True) -> list:
    """Seconds of ``repeats`` runs of ``fn``, after one warm-up run (which pays for tracing) by default."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def median_time(fn, repeats) -> float:
    return statistics.median(timings(fn, repeats))


# appended to a probe's code: print this process's own high-water mark (ru_maxrss would carry the
# parent's peak across fork+exec)
PRINT_VMHWM = "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"


def peak_rss(code: str) -> float:
    """Peak RSS (MiB) of a fresh Python process running ``code``."""
    out = subprocess.run([sys.executable, "-c", code + ";" + PRINT_VMHWM], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024.0  # Linux reports KiB
