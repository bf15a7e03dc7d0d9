"""Layer-method benchmark (issue 3): seconds per image and peak memory of IIA2, IIA3, Grad-CAM and XRAI,
with IG at 200 and 20 steps for comparison.

weights=None Keras applications at 224x224, batch_size=32, IIA with the paper's n=10 per interpolated
representation, XRAI with its default base (IG, 50 steps, over a black and a white baseline). Each
figure is the median of --repeats timed runs after one warm-up run that pays for tracing. Every
(model, method) pair runs in a fresh subprocess, so its peak memory is its own: process RSS sampled
every 5 ms by a thread (psutil) over the warm-up and timed runs, reported as the peak and as the rise
above the RSS after the model was built.

    python bench/bench_layers.py                          # full run, writes bench/results_layers.md
    python bench/bench_layers.py --models resnet50v2 --repeats 1 --out /tmp/x.md   # quick look
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_apps  # noqa: E402
import tfxattr  # noqa: E402
from benchlib import timings  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 32
METHODS = {  # label -> (method, options)
    "iia2 (n=10)": ("iia2", {"steps": 10}),
    "iia3 (n=10)": ("iia3", {"steps": 10}),
    "gradcam": ("gradcam", {}),
    "gradcam++": ("gradcam++", {}),
    "xrai (IG 50 x 2 baselines)": ("xrai", {}),
    "ig (200 steps)": ("ig", {"steps": 200}),
    "ig (20 steps)": ("ig", {"steps": 20}),
}


class PeakRSS:
    """Samples the process RSS in a thread; ``peak`` is the maximum seen since ``start``."""

    def __init__(self, every=0.005):
        self.every, self.proc = every, psutil.Process()

    def __enter__(self):
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.every)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def measure(adapter, images, targets, method, options, repeats):
    def run():
        tfxattr.explain(adapter, images, method, targets=targets, batch_size=BATCH, progress=False, **options)

    with PeakRSS() as mem:
        times = timings(run, repeats)
    return statistics.median(times) / len(images), times, mem.peak, mem.peak - mem.base


def run_one(name, label, repeats, n_images):
    """One (model, method) pair in this process: JSON with seconds per image, run times, peak RSS."""
    spec = keras_apps.get(name)
    adapter = tfxattr.as_model(keras_apps.build(name, weights=None), preprocess=spec.preprocess, batch_size=BATCH)
    images = np.random.default_rng(0).uniform(0, 255, (n_images,) + spec.input_shape).astype(np.float32)
    method, options = METHODS[label]
    sec, times, peak, rise = measure(adapter, images, np.arange(n_images) % 1000, method, options, repeats)
    print(json.dumps({"sec": sec, "times": times, "peak": peak, "rise": rise}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["resnet50v2", "densenet121"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS), metavar="LABEL")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=1, help="images per run (seconds are per image)")
    parser.add_argument("--out", default=os.path.join(HERE, "results_layers.md"))
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "LABEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return run_one(args.one[0], args.one[1], args.repeats, args.images)

    rows = []
    for name in args.models:
        display = keras_apps.get(name).display_name
        for label in args.methods:
            cmd = [sys.executable, os.path.abspath(__file__), "--one", name, label, "--repeats", str(args.repeats),
                   "--images", str(args.images)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            rows.append((display, label, r["sec"], r["times"], r["peak"], r["rise"]))
            print(f"{display:12s} {label:28s} {r['sec']:8.2f} s/image  runs {[round(t, 2) for t in r['times']]}  "
                  f"peak RSS {r['peak'] / 2**30:.2f} GiB (+{r['rise'] / 2**30:.2f})", flush=True)

    table = _markdown(rows, args)
    print("\n" + table)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(table)


def _markdown(rows, args):
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    lines = [
        "# Layer methods: seconds per image and peak memory",
        "",
        f"`python bench/bench_layers.py` on {platform.machine()}, {os.cpu_count()} CPU cores, TensorFlow "
        f"{tf.__version__}, weights=None, 224x224, batch_size={BATCH}, {args.images} image(s) per run, median of "
        f"{args.repeats} runs after a warm-up. Load average at the end: {', '.join(f'{v:.1f}' for v in load)} "
        "(the machine is shared: figures are noisy).",
        "",
        "| model | method | s / image | runs (s) | peak RSS (GiB) | rise (GiB) |",
        "|---|---|---:|---|---:|---:|",
    ]
    for model, label, sec, times, peak, rise in rows:
        lines.append(f"| {model} | {label} | {sec:.2f} | {', '.join(f'{t:.2f}' for t in times)} | "
                     f"{peak / 2**30:.2f} | {rise / 2**30:.2f} |")
    lines += ["", "Each row ran in a fresh process. peak RSS: the process maximum (model included); rise: peak minus "
              "the RSS right after the model was built (what the method itself needs, tracing included).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
