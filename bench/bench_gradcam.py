"""Grad-CAM / Grad-CAM++ per call vs Xplique and vs a hand-written bound (issue 24 item 3).

MobileNetV2 (keras_apps, weights=None, 224x224, no preprocessing layer: the images are fed as the model
reads them), layer ``out_relu`` (its last block), the images' top-1 classes as targets, batch_size 32.
For each batch size (1, 8, 32 images) every contender runs once per round, rounds interleaved in one
process, medians over ``--repeats`` rounds after one warm-up round (which pays for tracing):

* ``bound``: one hand-written ``tf.function`` (stem, tape, head, weights, ReLU, resize) on the whole batch:
  what no library can beat on the same graph;
* ``tfxattr explain``: ``tfxattr.explain(adapter, x, method, targets=t)`` (the public door: Explanation);
* ``tfxattr attribute``: ``method.attribute(adapter, x, t)`` (the method alone, as the evaluation runner calls it);
* ``xplique``: ``xplique.attributions.GradCAM/GradCAMPP(model, conv_layer="out_relu").explain(x, onehot)``
  when Xplique is importable (it is not a dependency: see bench/compare_peers_baselines.py for the scratch venv).

    PYTHONPATH=. python bench/bench_gradcam.py                       # writes bench/results_gradcam.md/.json
    PYTHONPATH=. /tmp/peers-venv/bin/python bench/bench_gradcam.py   # with Xplique
    PYTHONPATH=. python bench/bench_gradcam.py --profile 8           # cProfile of 20 tfxattr calls on 8 images

The machine is shared: the load average is printed with every table; compare ratios within one run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # this checkout's tfxattr, not an installed one

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfxattr  # noqa: E402
from benchlib import build, machine, write_results  # noqa: E402

LAYER = "out_relu"
METHODS = ("gradcam", "gradcam++")


def bound_function(model, layer, plus_plus):
    """A minimal Grad-CAM(++) tf.function at ``layer``: the fastest the same graph can be run."""
    stem = tf.keras.Model(model.inputs, model.get_layer(layer).output)
    start = [i for i, lay in enumerate(model.layers) if lay.name == layer][0]
    head_layers = model.layers[start + 1:]

    @tf.function(reduce_retracing=True)
    def cam(x, t):
        a = stem(x, training=False)
        with tf.GradientTape() as tape:
            tape.watch(a)
            h = a
            for lay in head_layers:
                h = lay(h, training=False)
            f = tf.gather(h, t, batch_dims=1)
        g = tape.gradient(f, a)
        if plus_plus:
            g2 = tf.square(g)
            alpha = tf.math.divide_no_nan(g2, 2.0 * g2 + tf.reduce_sum(a, [1, 2], keepdims=True) * g2 * g)
            w = tf.reduce_sum(alpha * tf.nn.relu(g), [1, 2], keepdims=True)
        else:
            w = tf.reduce_mean(g, [1, 2], keepdims=True)
        m = tf.nn.relu(tf.reduce_sum(w * a, -1, keepdims=True))
        return tf.image.resize(m, tf.shape(x)[1:3], method="bilinear")
    return lambda x, t: cam(tf.constant(x), tf.constant(t)).numpy()


def contenders(model, adapter, method_name, xplique_ok):
    method = tfxattr.get_method(method_name, layer=LAYER)
    out = {
        "bound": bound_function(model, LAYER, method_name == "gradcam++"),
        "tfxattr explain": lambda x, t: tfxattr.explain(adapter, x, method, targets=t, progress=False).attribution,
        "tfxattr attribute": lambda x, t: method.attribute(adapter, x, t),
    }
    if xplique_ok:
        from xplique.attributions import GradCAM, GradCAMPP

        explainer = (GradCAMPP if method_name == "gradcam++" else GradCAM)(model, conv_layer=LAYER, batch_size=32)
        k = model.output_shape[-1]
        out["xplique"] = lambda x, t: np.asarray(explainer.explain(x, tf.one_hot(t, k)))
    return out


def timed(fn, x, t):
    start = time.perf_counter()
    fn(x, t)
    return time.perf_counter() - start


def profile(adapter, x, t, calls, method_name):
    import cProfile
    import pstats

    method = tfxattr.get_method(method_name, layer=LAYER)
    method.attribute(adapter, x, t)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        method.attribute(adapter, x, t)
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(35)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--model", default="mobilenet_v2")
    ap.add_argument("--profile", type=int, default=0, help="profile tfxattr on this many images instead")
    ap.add_argument("--out", default=os.path.join(HERE, "results_gradcam.md"))
    args = ap.parse_args()
    try:
        import xplique  # noqa: F401
        xplique_ok = True
    except ImportError:
        xplique_ok = False
    model, _ = build(args.model)
    adapter = tfxattr.as_model(model, batch_size=32, input_range=(-1.0, 1.0))
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (max(args.sizes + [args.profile]), 224, 224, 3)).astype(np.float32)
    targets = np.argmax(model.predict(images, verbose=0), -1).astype(np.int32)
    if args.profile:
        for name in args.methods:
            profile(adapter, images[:args.profile], targets[:args.profile], 20, name)
        return 0
    rows, data = [], {"machine": machine(), "xplique": xplique_ok, "results": {}}
    for name in args.methods:
        for n in args.sizes:
            x, t = images[:n], targets[:n]
            fns = contenders(model, adapter, name, xplique_ok)
            if xplique_ok:
                ours = fns["tfxattr attribute"](x, t)[..., 0]
                theirs = fns["xplique"](x, t)
                theirs = theirs.reshape(ours.shape)
                corr = min(np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(ours, theirs))
                print(f"{name} n={n}: min per-image correlation with Xplique {corr:.6f}", file=sys.stderr)
            times = {k: [] for k in fns}
            for k, fn in fns.items():
                fn(x, t)  # warm-up: tracing
            for _ in range(args.repeats):
                for k, fn in fns.items():
                    times[k].append(timed(fn, x, t))
            med = {k: statistics.median(v) for k, v in times.items()}
            data["results"][f"{name}/{n}"] = {"times": times, "median": med}
            ref = med.get("xplique", med["bound"])
            for k, v in med.items():
                rows.append(f"| {name} | {n} | {k} | {1000 * v / n:.1f} | {v / ref:.2f} | {v / med['bound']:.2f} |")
            print("\n".join(rows[-len(med):]), file=sys.stderr, flush=True)
    load = os.getloadavg()
    ref_name = "Xplique" if xplique_ok else "the bound (Xplique not installed)"
    lines = ["# Grad-CAM / Grad-CAM++ per call (issue 24 item 3)", "",
             f"`PYTHONPATH=. python bench/bench_gradcam.py --repeats {args.repeats}`; {machine()}; "
             f"{args.model} weights=None 224x224, layer {LAYER}, batch_size 32; medians of {args.repeats} "
             f"interleaved rounds after a warm-up; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
             "at the end (shared 2-core machine: final figures need an idle one).", "",
             f"| method | images | contender | ms / image | x {ref_name} | x bound |", "|---|---|---|---|---|---|",
             *rows]
    data["load"] = load
    write_results(args.out, lines, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
