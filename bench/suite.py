"""The core benchmarks in one process and one table (issue 24 item 5; run through ``bench/gpu.sh``).

Two profiles of the same cases: ``gpu`` (MobileNetV2 weights=None at 224, 32 images, IG 200 steps,
keras-hub ViT-B/16, within ~5 minutes on one GPU) and ``cpu`` (the shipped 64x64 demo CNN and demo ViT, a
few images and steps: what ``tests/scripts/test_bench_suite.py`` runs here). Each case is timed with
``benchlib.timings`` (one warm-up that pays for tracing, then ``repeats`` runs; the median, in seconds per
image) and compared with its reference in the table's last column:

* ``raw bound``: IG's input gradients through one hand-written ``tf.function`` (no path bookkeeping), the bound
  for ``ig`` and ``ig+idgi`` (bench/bench_core.py's, for any model);
* ``gradcam`` / ``gradcam++`` and ``iia2`` (layer methods), vs ``gradcam``;
* ``sic_aic_idgi`` at ``jobs=1`` and every core (bench/bench_jobs.py);
* ViT methods (``attention_rollout``, ``gae``, ``iia_vit``), vs ``gae`` (bench/bench_vit.py);
* ``ig`` in bfloat16 vs float32 (bench/bench_precision.py's speed half).

    PYTHONPATH=. python bench/suite.py --profile cpu      # or: bash bench/gpu.sh
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))  # this checkout's tfxattr, not an installed one

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchlib import machine, timings, write_results  # noqa: E402

PROFILES = {
    "gpu": dict(cnn="mobilenet_v2", images=32, steps=200, pic_images=8, vit="vit_b16", vit_images=8, repeats=3),
    "cpu": dict(cnn="demo", images=2, steps=16, pic_images=2, vit="demo_vit", vit_images=1, repeats=1),
}


def raw_bound(adapter, images, targets, steps, batch_size):
    """``steps`` input gradients per image along the straight line from black, through one tf.function."""
    model, preprocess = adapter.keras_model, adapter.preprocess or (lambda v: v)

    @tf.function(reduce_retracing=True)
    def grad(x, t):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.gather(model(preprocess(x), training=False), t, batch_dims=1)
        return tape.gradient(y, x)

    alphas = np.linspace(0, 1, steps, dtype=np.float32)

    def run():
        for image, t in zip(images, targets):
            for i in range(0, steps, batch_size):
                a = alphas[i:i + batch_size, None, None, None]
                grad(tf.constant(a * image[None]), tf.fill([len(a)], int(t))).numpy()
    return run


def cases(p, batch_size):
    import tfxattr
    from tfxattr.metrics import compute

    rng = np.random.default_rng(0)
    cnn = tfxattr.as_model(p["cnn"], weights="none", batch_size=batch_size)
    bf16 = tfxattr.as_model(p["cnn"], weights="none", batch_size=batch_size, precision="bfloat16")
    h, w, c = cnn.input_shape
    x = rng.uniform(0, 255, (p["images"], h, w, c)).astype(np.float32)
    t = cnn.scores(x).argmax(-1).astype(np.int32)

    def explain(method, images=x, targets=t, model=cnn, **options):
        return lambda: tfxattr.explain(model, images, method, targets=targets, batch_size=batch_size,
                                       progress=False, **options)
    steps = p["steps"]
    out = [("raw bound: IG's gradients, one tf.function", p["images"], raw_bound(cnn, x, t, steps + 1, batch_size),
            None),
           (f"ig ({steps} steps)", p["images"], explain("ig", steps=steps), 0),
           (f"ig+idgi ({steps} steps)", p["images"], explain("ig+idgi", steps=steps), 0),
           (f"ig ({steps} steps) bfloat16", p["images"],
            explain("ig", model=bf16, steps=steps, precision="bfloat16"), 1),
           ("gradcam", p["images"], explain("gradcam"), None),
           ("gradcam++", p["images"], explain("gradcam++"), 4),
           ("iia2 (n=10)", p["images"], explain("iia2"), 4)]
    n = p["pic_images"]
    maps = rng.random((n, h, w)).astype(np.float32)
    for jobs in (1, None):
        label = f"sic_aic_idgi, jobs={jobs or 'all cores'}"
        out.append((label, n, lambda jobs=jobs: compute("sic_aic_idgi", cnn, x[:n], maps, targets=t[:n],
                                                        min_pred_value=0.0, jobs=jobs), None if jobs else 7))
    vit = tfxattr.as_model(p["vit"], weights="none", batch_size=batch_size)
    vh, vw, vc = vit.input_shape
    xv = rng.uniform(0, 255, (p["vit_images"], vh, vw, vc)).astype(np.float32)
    tv = np.ones(len(xv), np.int32)
    first = len(out)
    for method in ("gae", "attention_rollout", "iia_vit"):
        ref = None if method == "gae" else first
        out.append((f"{method} ({p['vit']})", len(xv), explain(method, xv, tv, vit), ref))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", choices=list(PROFILES), default="cpu")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", default=None, help="also write the table here (and its .json)")
    args = ap.parse_args(argv)
    p = dict(PROFILES[args.profile])
    repeats = args.repeats or p["repeats"]
    start = time.perf_counter()
    gpus = tf.config.list_physical_devices("GPU")
    rows, data = [], {"profile": args.profile, "settings": p, "gpus": len(gpus), "seconds": {}}
    medians = []
    for label, n, fn, ref in cases(p, args.batch_size):
        seconds = statistics.median(timings(fn, repeats)) / n
        medians.append(seconds)
        data["seconds"][label] = seconds
        ratio = "" if ref is None else f"{seconds / medians[ref]:.2f}"
        rows.append(f"| {label} | {n} | {seconds * 1000:.1f} | {ratio} |")
        print(rows[-1], file=sys.stderr, flush=True)
    load = os.getloadavg()
    data["load"], data["wall"] = load, time.perf_counter() - start
    device = ", ".join(d.name for d in gpus) or "no GPU (CPU)"
    lines = [f"# Core benchmarks, profile {args.profile} ({device})", "",
             f"`bash bench/gpu.sh` ({args.profile}: {p}); {machine()}; medians of {repeats} after a warm-up; "
             f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; {data['wall']:.0f} s in all.", "",
             "| case | images | ms / image | x reference (raw bound for IG; float32 ig for bfloat16; gradcam; "
             "jobs=1; gae) |", "|---|---|---|---|", *rows]
    if args.out:
        write_results(args.out, lines, data)
    else:
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
