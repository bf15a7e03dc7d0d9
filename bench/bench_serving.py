"""Serving benchmark (issue 10): the exported ``explain_ig_idgi`` signature vs ``tfxattr.explain``.

weights=None Keras applications at 224x224, one image, 200 steps, batch_size=32: seconds per image of
the signature called through ``tf.saved_model.load`` and of the library path, median of --repeats
runs after one warm-up run. Peak RSS of a fresh process that loads the export (TensorFlow only) and
explains one image, for exports with 200 and 2000 steps at batch_size=8 (memory must not grow with
steps; VmHWM of the child itself).

    python bench/bench_serving.py                                   # full run, writes bench/results_serving.md
    python bench/bench_serving.py --models mobilenet_v2 --repeats 1 # quick look
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchlib import build, machine, median_time, peak_rss, write_results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = 200  # the core benchmark's path length
BATCH = 32  # the core benchmark's batch size
MEMORY_STEPS = (200, 2000)  # the memory check: 10x the steps
MEMORY_BATCH = 8  # the memory check batch size
TARGET = 1  # any class: random weights




def export(model, spec, path, steps, batch_size):
    import tfxattr

    tfxattr.export(model, path, methods=["ig+idgi"], steps=steps, batch_size=batch_size, preprocess=spec.preprocess)
    return path


def time_model(name, repeats, folder):
    import tfxattr

    model, spec = build(name)
    image = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    path = export(model, spec, os.path.join(folder, f"{name}_{STEPS}_{BATCH}"), STEPS, BATCH)
    signature = tf.saved_model.load(path).signatures["explain_ig_idgi"]
    images, targets = tf.constant(image), tf.constant([TARGET], tf.int32)
    served = median_time(lambda: signature(images=images, targets=targets)["attributions"].numpy(), repeats)
    library = median_time(lambda: tfxattr.explain(model, image, "ig+idgi", targets=TARGET, steps=STEPS,
                                                  batch_size=BATCH, preprocess=spec.preprocess, progress=False),
                          repeats)
    print(f"  {name:14s} exported {served:8.2f} s   library {library:8.2f} s   ratio {served / library:.3f}",
          flush=True)
    return {"exported": served, "library": library}


def peak_memory(path):
    """VmHWM (MiB) of a fresh process that loads ``path`` with TensorFlow alone and explains one image."""
    code = (
        "import os,sys;os.environ['TF_CPP_MIN_LOG_LEVEL']='3';sys.modules['tfxattr']=None;"
        "import numpy as np,tensorflow as tf;"
        f"f=tf.saved_model.load({path!r}).signatures['explain_ig_idgi'];"
        "x=tf.constant(np.random.default_rng(0).uniform(0,255,(1,224,224,3)).astype('float32'));"
        f"f(images=x,targets=tf.constant([{TARGET}]))['attributions'].numpy()")
    return peak_rss(code)


def memory_model(name, folder):
    model, spec = build(name)
    return {steps: peak_memory(export(model, spec, os.path.join(folder, f"{name}_{steps}_{MEMORY_BATCH}"), steps,
                                      MEMORY_BATCH)) for steps in MEMORY_STEPS}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["mobilenet_v2", "resnet50v2"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(HERE, "results_serving.md"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        times = {m: time_model(m, args.repeats, folder) for m in args.models}
        memory = {m: memory_model(m, folder) for m in args.models}
    lo, hi = MEMORY_STEPS
    lines = [f"# Serving benchmark ({time.strftime('%Y-%m-%d')})", "",
             f"{machine()}; "
             f"weights=None, 224x224, one image, ig+idgi with {STEPS} steps, batch_size={BATCH}, median of "
             f"{args.repeats} runs after a warm-up run.", "",
             "| model | exported explain_ig_idgi (tf.saved_model.load) | tfxattr.explain | ratio (target <= 1.10) |",
             "|---|---|---|---|"]
    for m in args.models:
        t = times[m]
        lines.append(f"| {m} | {t['exported']:.2f} s | {t['library']:.2f} s | {t['exported'] / t['library']:.3f} |")
    lines += ["", f"Peak RSS of a fresh process (TensorFlow only) loading the export and explaining one image, "
              f"batch_size={MEMORY_BATCH} (MiB):", "",
              f"| model | {lo} steps | {hi} steps | ratio |", "|---|---|---|---|"]
    for m in args.models:
        lines.append(f"| {m} | {memory[m][lo]:.0f} | {memory[m][hi]:.0f} | {memory[m][hi] / memory[m][lo]:.3f} |")
    write_results(args.out, lines, {"times": times, "peak_rss_mib": memory})


if __name__ == "__main__":
    main()
