"""Time to a faithful map (issue 15): gradients and seconds until IG is complete within 1 %, and until a
map is within Spearman 0.99 of a 1,000-step reference, for each quadrature rule / schedule / precision of
tfxattr, Xplique's IntegratedGradients (when importable) and PAIR's IntegratedGradients with an eager
call_model_function, in one process, interleaved (every repeat runs every contender at every ladder
point in turn), medians of --repeats runs after a warm-up.

"Gradients to 1 %" of an image: the smallest ladder count from which on (to the end of the ladder) its
completeness error |sum(a) / (f(x) - f(b)) - 1| stays <= 1 %; "seconds to 1 %": the contender's median
time per image at that count (batched contenders run all images in one call). Medians over images;
"-" = not reached within the ladder. Every contender is handed the same model (preprocessing inside it).

    python bench/bench_time_to_faithful.py --models demo                         # the demo model, 8 images
    python bench/bench_time_to_faithful.py --models mobilenet_v2 --images 1 --ladder 16 32 64 128
Xplique pins TF <= 2.20: run it from a venv made with --system-site-packages and `pip install --no-deps
xplique` (plus its import-time needs), e.g. /tmp/speed-venv/bin/python bench/bench_time_to_faithful.py.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from benchlib import machine, write_results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 32
TOLERANCE = 0.01  # completeness error that counts as complete (the 1 %)
AGREEMENT = 0.99  # Spearman of a map with the reference map that counts as faithful
REFERENCE_STEPS = 1000


def load(name, n_images):
    """(keras model with preprocessing inside, float32 images in 0..255 at the model's own size)."""
    import keras

    if name == "demo":
        from tfxattr.demo import load_demo_model, make_demo_data

        return load_demo_model(), make_demo_data(n_images, seed=123)["images"].astype(np.float32)
    import keras_apps

    spec = keras_apps.get(name)
    net = keras_apps.build(name, weights=None)
    size = net.inputs[0].shape[1]
    inp = keras.Input((size, size, 3))
    model = keras.Model(inp, net(keras.layers.Lambda(spec.preprocess)(inp)))
    images = np.random.default_rng(0).uniform(0, 255, (n_images, size, size, 3)).astype(np.float32)
    return model, images


def tfx(model, method, gradients_to_steps, **options):
    import tfxattr

    def run(images, targets, gradients):
        return tfxattr.explain(model, images, method, targets=targets, steps=gradients_to_steps(gradients),
                               batch_size=BATCH, progress=False, **options).attribution
    return run


def xplique_ig(model):
    try:
        from xplique.attributions import IntegratedGradients
    except ImportError:
        return None

    def run(images, targets, gradients):
        onehot = tf.one_hot(targets, model.outputs[0].shape[-1])
        ig = IntegratedGradients(model, batch_size=BATCH, steps=gradients, reducer=None)
        return np.asarray(ig.explain(images, onehot))
    return run


def pair_ig(model):
    import saliency.core as saliency_core

    def run(images, targets, gradients):
        out = []
        for image, target in zip(images, targets):
            def cmf(x, call_model_args=None, expected_keys=None):
                x = tf.convert_to_tensor(x, tf.float32)
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = model(x)[:, int(target)]
                return {saliency_core.INPUT_OUTPUT_GRADIENTS: tape.gradient(y, x).numpy()}
            out.append(saliency_core.IntegratedGradients().GetMask(image, cmf, x_baseline=np.zeros_like(image),
                                                                    x_steps=gradients, batch_size=BATCH))
        return np.stack(out)
    return run


def contenders(model, fast):
    """name -> (run(images, targets, gradients), measure): "ig" contenders are scored by completeness and
    against the IG reference, "idgi" ones (exactly complete) against the IDGI reference."""
    same = lambda g: g  # noqa: E731  g gradients = g steps (left, midpoint, Gauss-Legendre)
    minus_one = lambda g: g - 1  # noqa: E731  the trapezoid takes steps + 1 gradients
    out = {
        "tfxattr ig trapezoid": (tfx(model, "ig", minus_one, rule="trapezoid"), "ig"),
        "tfxattr ig trapezoid bfloat16": (tfx(model, "ig", minus_one, rule="trapezoid", precision="bfloat16"), "ig"),
        "tfxattr ig gausslegendre": (tfx(model, "ig", same, rule="gausslegendre"), "ig"),
        "tfxattr ig adaptive trapezoid": (tfx(model, "ig", minus_one, rule="trapezoid", schedule="adaptive"), "ig"),
        "tfxattr ig+idgi left": (tfx(model, "ig+idgi", same), "idgi"),
        "tfxattr ig+idgi left bfloat16": (tfx(model, "ig+idgi", same, precision="bfloat16"), "idgi"),
        "tfxattr ig+idgi midpoint": (tfx(model, "ig+idgi", same, rule="midpoint"), "idgi"),
        "tfxattr ig+idgi adaptive left": (tfx(model, "ig+idgi", same, schedule="adaptive"), "idgi"),
        "PAIR ig (eager, linspace)": (pair_ig(model), "ig"),
    }
    xp = xplique_ig(model)
    if xp is not None:
        out["Xplique ig (trapezoid)"] = (xp, "ig")
    if fast:
        keep = ("tfxattr ig trapezoid", "tfxattr ig trapezoid bfloat16", "tfxattr ig gausslegendre",
                "tfxattr ig+idgi left", "tfxattr ig+idgi left bfloat16", "PAIR ig (eager, linspace)",
                "Xplique ig (trapezoid)")
        out = {k: v for k, v in out.items() if k in keep}
    return out


def maps(attr):
    return np.abs(attr).sum(-1).reshape(len(attr), -1)


def first_stable(ladder, ok):
    """The smallest ladder value from which on ``ok`` holds to the end (None: never)."""
    best = None
    for g, good in zip(reversed(ladder), reversed(ok)):
        if not good:
            break
        best = g
    return best


def run_model(name, n_images, ladder, repeats, fast):
    import tfxattr

    model, images = load(name, n_images)
    adapter = tfxattr.as_model(model)
    targets = adapter.scores(images).argmax(1).astype(np.int32)
    delta = adapter.values(images, targets).numpy() - adapter.values(0 * images, targets).numpy()
    refs = {"ig": maps(tfxattr.explain(model, images, "ig", targets=targets, steps=REFERENCE_STEPS, batch_size=BATCH,
                                        progress=False).attribution),
            "idgi": maps(tfxattr.explain(model, images, "ig+idgi", targets=targets, steps=REFERENCE_STEPS,
                                          batch_size=BATCH, progress=False).attribution)}
    cons = contenders(model, fast)
    times = {c: {g: [] for g in ladder} for c in cons}
    err, rho = {}, {}
    for c, (run, _) in cons.items():  # warm-up (tracing), and the numbers, which do not change between runs
        for g in ladder:
            attr = np.asarray(run(images, targets, g))
            err[c, g] = np.abs(attr.reshape(len(images), -1).sum(1) / delta - 1)
            rho[c, g] = np.array([spearmanr(m, r)[0] for m, r in zip(maps(attr), refs[cons[c][1]])])
    for _ in range(repeats):  # interleaved: every contender at every ladder point, in turn
        for g in ladder:
            for c, (run, _) in cons.items():
                t = time.perf_counter()
                run(images, targets, g)
                times[c][g].append((time.perf_counter() - t) / len(images))
    rows = {}
    for c in cons:
        sec = {g: statistics.median(times[c][g]) for g in ladder}
        complete = [first_stable(ladder, [err[c, g][i] <= TOLERANCE for g in ladder]) for i in range(len(images))]
        agree = [first_stable(ladder, [rho[c, g][i] >= AGREEMENT for g in ladder]) for i in range(len(images))]
        rows[c] = {"measure": cons[c][1], "seconds_per_image": sec,
                   "gradients_to_1pct": _median(complete), "seconds_to_1pct": _median_time(complete, sec),
                   "gradients_to_rho99": _median(agree), "seconds_to_rho99": _median_time(agree, sec),
                   "median_error": {g: float(np.median(err[c, g])) for g in ladder},
                   "median_rho": {g: float(np.median(rho[c, g])) for g in ladder}}
        print(f"  {name} {c:34s} grads->1% {rows[c]['gradients_to_1pct']}  s->1% {rows[c]['seconds_to_1pct']}  "
              f"grads->rho.99 {rows[c]['gradients_to_rho99']}  s->rho.99 {rows[c]['seconds_to_rho99']}", flush=True)
    return rows


def _median(values):
    """Median over images; None (not reached) counts as larger than any ladder value."""
    finite = sorted(v if v is not None else np.inf for v in values)
    m = finite[(len(finite) - 1) // 2]  # the lower median: a count someone actually reached
    return None if not np.isfinite(m) else int(m)


def _median_time(counts, sec):
    t = sorted(sec[c] if c is not None else np.inf for c in counts)
    m = t[(len(t) - 1) // 2]
    return None if not np.isfinite(m) else float(m)


def fmt(v, unit=""):
    return "-" if v is None else f"{v:.3f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["demo"])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--ladder", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256], help="gradient counts")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fast", action="store_true", help="fewer contenders (big models on a shared machine)")
    ap.add_argument("--out", default=os.path.join(HERE, "results_time_to_faithful.md"))
    args = ap.parse_args()
    load_before = os.getloadavg()
    results = {m: run_model(m, args.images, args.ladder, args.repeats, args.fast) for m in args.models}
    lines = [f"# Time to a faithful map ({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"{machine()}; load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after (shared "
             f"machine); {args.images} image(s), ladder {args.ladder} gradients, batch_size={BATCH}, median of "
             f"{args.repeats} interleaved runs after a warm-up; reference maps: {REFERENCE_STEPS} steps (IG "
             "trapezoid, IDGI left). Seconds are per image.", ""]
    for m, rows in results.items():
        lines += [f"## {m}", "", "| contender | gradients to 1 % completeness | seconds to 1 % | gradients to "
                  "Spearman 0.99 | seconds to Spearman 0.99 |", "|---|---|---|---|---|"]
        for c, r in rows.items():
            lines.append(f"| {c} | {fmt(r['gradients_to_1pct'])} | {fmt(r['seconds_to_1pct'], ' s')} | "
                         f"{fmt(r['gradients_to_rho99'])} | {fmt(r['seconds_to_rho99'], ' s')} |")
        xp, best = rows.get("Xplique ig (trapezoid)"), None
        ours = [r["seconds_to_1pct"] for c, r in rows.items() if c.startswith("tfxattr ig ") and r["measure"] == "ig"
                and r["seconds_to_1pct"] is not None]
        if ours:
            best = min(ours)
        if xp is not None and best is not None and xp["seconds_to_1pct"] is not None:
            lines += ["", f"Xplique / best tfxattr IG rule, seconds to 1 % completeness: "
                      f"{xp['seconds_to_1pct'] / best:.2f} (target >= 2)"]
        lines += ["", "Median completeness error / median Spearman with the reference, per gradient count:", "",
                  "| contender | " + " | ".join(str(g) for g in args.ladder) + " |",
                  "|---|" + "---|" * len(args.ladder)]
        for c, r in rows.items():
            cells = " | ".join(f"{r['median_error'][g]:.4f} / {r['median_rho'][g]:.4f}" for g in args.ladder)
            lines.append(f"| {c} | {cells} |")
        lines += ["", "Seconds per image at each gradient count:", "",
                  "| contender | " + " | ".join(str(g) for g in args.ladder) + " |",
                  "|---|" + "---|" * len(args.ladder)]
        for c, r in rows.items():
            lines.append(f"| {c} | " + " | ".join(f"{r['seconds_per_image'][g]:.3f}" for g in args.ladder) + " |")
        lines.append("")
    write_results(args.out, lines, {"args": vars(args), "results": _jsonable(results)})


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    return obj


if __name__ == "__main__":
    main()
