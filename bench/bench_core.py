"""Core benchmark (issue 2): seconds per image for the path methods vs the raw gradient bound and PAIR.

weights=None Keras applications at 224x224, one image, 200 steps, batch_size=32, median of --repeats
runs in one process (after one warm-up run that pays for tracing). Peak memory of IG at 50 vs 400
steps is measured in fresh subprocesses (ru_maxrss only grows within a process).

    python bench/bench_core.py                 # full run, writes bench/results_core.md
    python bench/bench_core.py --models mobilenet_v2 --repeats 1   # quick look
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchlib import build, machine, median_time, peak_rss, write_results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = 200
BATCH = 32




def raw_bound(model, spec, image, target):
    """200 input gradients through one tf.function, in chunks of 32 (no path bookkeeping at all)."""
    @tf.function(input_signature=[tf.TensorSpec((None, 224, 224, 3), tf.float32)])
    def grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = model(spec.preprocess(x), training=False)[:, target]
        return tape.gradient(y, x)

    alphas = np.linspace(0, 1, STEPS, dtype=np.float32)

    def run():
        for i in range(0, STEPS, BATCH):
            a = alphas[i:i + BATCH, None, None, None]
            grad(tf.constant(a * image[None])).numpy()
    return run


def pair_loop(model, spec, image, target):
    """PAIR's IntegratedGradients with an eager GradientTape call_model_function (their notebook pattern)."""
    import saliency.core as saliency_core

    def cmf(x, call_model_args=None, expected_keys=None):
        x = tf.convert_to_tensor(x, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = model(spec.preprocess(x))[:, target]
        return {saliency_core.INPUT_OUTPUT_GRADIENTS: tape.gradient(y, x).numpy()}

    ig = saliency_core.IntegratedGradients()
    return lambda: ig.GetMask(image, cmf, x_baseline=np.zeros_like(image), x_steps=STEPS, batch_size=BATCH)


def ours(model, spec, image, target, method, **options):
    import tfxattr

    return lambda: tfxattr.explain(model, image, method, targets=target, batch_size=BATCH,
                                   preprocess=spec.preprocess, progress=False, **options)


def time_model(name, repeats):
    model, spec = build(name)
    image = np.random.default_rng(0).uniform(0, 255, (224, 224, 3)).astype(np.float32)
    target = 1
    rows = {}
    cases = [
        ("raw bound (tf.function, 200 grads)", raw_bound(model, spec, image, target)),
        ("ig", ours(model, spec, image, target, "ig", steps=STEPS)),
        ("ig+idgi", ours(model, spec, image, target, "ig+idgi", steps=STEPS)),
        ("guided_ig", ours(model, spec, image, target, "guided_ig", steps=STEPS)),
        ("blur_ig", ours(model, spec, image, target, "blur_ig", steps=STEPS)),
        ("ggig (default: 20 x 10)", ours(model, spec, image, target, "ggig")),
        ("PAIR IntegratedGradients, eager tape", pair_loop(model, spec, image, target)),
    ]
    for label, fn in cases:
        rows[label] = median_time(fn, repeats)
        print(f"  {name:14s} {label:38s} {rows[label]:8.2f} s", flush=True)
    return rows


def peak_memory(name, steps):
    code = (
        "import os,numpy as np;os.environ['TF_CPP_MIN_LOG_LEVEL']='3';import keras_apps,tfxattr;"
        f"m=keras_apps.build('{name}',weights=None);s=keras_apps.get('{name}');"
        "x=np.random.default_rng(0).uniform(0,255,(224,224,3)).astype('float32');"
        f"tfxattr.explain(m,x,'ig+idgi',targets=1,steps={steps},batch_size={BATCH},preprocess=s.preprocess,"
        "progress=False)")
    return peak_rss(code)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["mobilenet_v2", "resnet50v2"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(HERE, "results_core.md"))
    ap.add_argument("--memory-only", action="store_true", help="reuse the timings in the .json next to --out")
    args = ap.parse_args()
    if args.memory_only:
        with open(os.path.splitext(args.out)[0] + ".json") as f:
            times = json.load(f)["times"]
        results = {m: times[m] for m in args.models}
    else:
        results = {m: time_model(m, args.repeats) for m in args.models}
    memory = {m: {s: peak_memory(m, s) for s in (50, 400)} for m in args.models}
    lines = [f"# Core benchmark ({time.strftime('%Y-%m-%d')})", "",
             f"{machine()}; "
             f"weights=None, 224x224, one image, {STEPS} steps, batch_size={BATCH}, median of {args.repeats} runs "
             "after a warm-up run.", "",
             "| method | " + " | ".join(args.models) + " |", "|---|" + "---|" * len(args.models)]
    for label in next(iter(results.values())):
        lines.append(f"| {label} | " + " | ".join(f"{results[m][label]:.2f} s" for m in args.models) + " |")
    lines += ["", "| ratio | " + " | ".join(args.models) + " |", "|---|" + "---|" * len(args.models)]
    raw, pair = "raw bound (tf.function, 200 grads)", "PAIR IntegratedGradients, eager tape"
    ratios = [("ig / raw bound (target <= 1.10)", "ig", raw), ("PAIR loop / ig (target >= 2)", pair, "ig"),
              ("ig+idgi / ig (target <= 1.05)", "ig+idgi", "ig")]
    for label, num, den in ratios:
        cells = " | ".join(f"{results[m][num] / results[m][den]:.3f}" for m in args.models)
        lines.append(f"| {label} | {cells} |")
    lines += ["", "Peak RSS of a fresh process running ig+idgi once (MiB):", "",
              "| model | 50 steps | 400 steps | ratio (target <= 1.10) |", "|---|---|---|---|"]
    for m in args.models:
        lines.append(f"| {m} | {memory[m][50]:.0f} | {memory[m][400]:.0f} | {memory[m][400] / memory[m][50]:.3f} |")
    write_results(args.out, lines, {"times": results, "peak_rss_mib": memory})


if __name__ == "__main__":
    main()
