"""Time to a faithful map (issues 15 and 24): for each contender (tfxattr's IG rules, schedules and IG+IDGI,
Xplique's IntegratedGradients when importable, PAIR's IntegratedGradients with an eager call_model_function),
the gradients and seconds per image until its map is faithful: complete within 1 % AND within Spearman 0.99 of
a 2,000-step map of the same method (IG: the trapezoid's; IG+IDGI: IDGI's left rule; Xplique and PAIR: the IG
one). Every contender is handed the same model (preprocessing inside it) and the same images.

A contender is faithful on an image from the smallest ladder count from which on (to the end of the ladder) both
criteria hold; its count is the median of that over the images (an image never faithful counts as beyond the
ladder; "-": the median is beyond; such a contender is timed at the ladder's last count, a lower bound of its
time, written "> ..."). Seconds: the median of --repeats interleaved runs (every contender at its
count in turn, after a warm-up run of each) of all images at once, per image. The ratio reported is Xplique's
seconds over the fastest tfxattr contender's.

Two phases, so that only the timing needs an idle machine:
* ``accuracy``: the 2,000-step maps and every contender's errors at every ladder count (no clock read), cached
  in --cache per model, images and ladder point: a killed run resumes where it stopped;
* ``time``: the interleaved timing at each contender's count (and the seconds per gradient of one gradient
  batch by batch size: the batch-size lever), then the tables.

    PYTHONPATH=. python bench/bench_time_to_faithful.py --phase accuracy          # any time (nice it)
    PYTHONPATH=. python bench/bench_time_to_faithful.py --phase time              # idle machine only
    python bench/bench_time_to_faithful.py --models demo --images 8 --ladder 8 16 32 64 --out /tmp/demo.md
Xplique pins TF <= 2.20: run it from a venv made with --system-site-packages and `pip install --no-deps
xplique` (plus its import-time needs: deprecated, opencv-python-headless, scikit-learn, joblib,
tensorflow-probability, tf_keras, narwhals), e.g. PYTHONPATH=. /tmp/xpl-venv/bin/python bench/....
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from benchlib import machine, write_results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 32  # rows per model call for every contender (tfxattr's default batch_size, Xplique's default)
TOLERANCE = 0.01  # completeness error that counts as complete (the 1 %)
AGREEMENT = 0.99  # Spearman of a map with its method's 2,000-step map that counts as converged
REFERENCE_STEPS = 2000
LADDER = [16, 24, 32, 48, 64, 96, 128, 192, 256]
BATCH_SIZES = [8, 16, 32, 64]  # the batch-size lever: seconds per gradient of one gradient batch
XPLIQUE = "Xplique ig (trapezoid)"


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


def tfx(model, method, gradients_to_steps, batch_size=BATCH, **options):
    import tfxattr

    def run(images, targets, gradients):
        return tfxattr.explain(model, images, method, targets=targets, steps=gradients_to_steps(gradients),
                               batch_size=batch_size, progress=False, **options).attribution
    return run


def xplique_ig(model):
    """Xplique's IG, one explainer per gradient count built once (its traced gradient is per explainer: a
    new explainer per call would time its tracing too)."""
    try:
        from xplique.attributions import IntegratedGradients
    except ImportError:
        return None
    explainers = {}

    def run(images, targets, gradients):
        if gradients not in explainers:
            explainers[gradients] = IntegratedGradients(model, batch_size=BATCH, steps=gradients, reducer=None)
        onehot = tf.one_hot(targets, model.outputs[0].shape[-1])
        return np.asarray(explainers[gradients].explain(images, onehot))
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


def contenders(model):
    """name -> (run(images, targets, gradients), reference family: "ig" or "idgi")."""
    same = lambda g: g  # noqa: E731  g gradients = g steps (left, midpoint, Gauss-Legendre)
    minus_one = lambda g: g - 1  # noqa: E731  the trapezoid takes steps + 1 gradients
    out = {
        "tfxattr ig trapezoid": (tfx(model, "ig", minus_one, rule="trapezoid"), "ig"),
        "tfxattr ig gausslegendre": (tfx(model, "ig", same, rule="gausslegendre"), "ig"),
        "tfxattr ig adaptive trapezoid": (tfx(model, "ig", minus_one, rule="trapezoid", schedule="adaptive"), "ig"),
        "tfxattr ig+idgi left": (tfx(model, "ig+idgi", same), "idgi"),
        "tfxattr ig+idgi midpoint": (tfx(model, "ig+idgi", same, rule="midpoint"), "idgi"),
        "tfxattr ig+idgi adaptive left": (tfx(model, "ig+idgi", same, schedule="adaptive"), "idgi"),
        "PAIR ig (eager, linspace)": (pair_ig(model), "ig"),
    }
    xp = xplique_ig(model)
    if xp is not None:
        out[XPLIQUE] = (xp, "ig")
    return out


def maps(attr):
    return np.abs(np.asarray(attr)).sum(-1).reshape(len(attr), -1)


class Setup:
    """The model, images, targets, f(x) - f(b) and the cache of one (model, images) pair."""

    def __init__(self, name, n_images, cache):
        import tfxattr

        self.name, self.model, self.images = name, *load(name, n_images)
        adapter = tfxattr.as_model(self.model)
        self.targets = adapter.scores(self.images).argmax(1).astype(np.int32)
        self.delta = (adapter.values(self.images, self.targets).numpy()
                      - adapter.values(0 * self.images, self.targets).numpy())
        self.dir = os.path.join(cache, f"{name}-{n_images}")
        os.makedirs(self.dir, exist_ok=True)

    def reference(self, family):
        """The 2,000-step maps of "ig" (trapezoid) or "idgi" (IG+IDGI, left rule), computed once."""
        path = os.path.join(self.dir, f"reference-{family}-{REFERENCE_STEPS}.npy")
        if not os.path.exists(path):
            import tfxattr

            method = "ig" if family == "ig" else "ig+idgi"
            attr = tfxattr.explain(self.model, self.images, method, targets=self.targets, steps=REFERENCE_STEPS,
                                   batch_size=BATCH, progress=False).attribution
            np.save(path, maps(attr))
        return np.load(path)

    def accuracy(self, name, run, family, gradients):
        """{"error": per-image completeness error, "rho": Spearman with the family's reference, "rho_ig": with
        the IG reference}, computed once per contender and count."""
        path = os.path.join(self.dir, f"{name.replace(' ', '_')}-{gradients}.json")
        if not os.path.exists(path):
            attr = np.asarray(run(self.images, self.targets, gradients))
            m = maps(attr)
            entry = {"error": np.abs(attr.reshape(len(attr), -1).sum(1) / self.delta - 1).tolist(),
                     "rho": [float(spearmanr(a, r)[0]) for a, r in zip(m, self.reference(family))],
                     "rho_ig": [float(spearmanr(a, r)[0]) for a, r in zip(m, self.reference("ig"))]}
            with open(path, "w") as f:
                json.dump(entry, f)
        with open(path) as f:
            return json.load(f)


def first_stable(ladder, ok):
    """The smallest ladder value from which on ``ok`` holds to the end (None: never)."""
    best = None
    for g, good in zip(reversed(ladder), reversed(ok)):
        if not good:
            break
        best = g
    return best


def median_count(counts):
    """The median over images (the upper one for an even count); None (never) counts as beyond the ladder."""
    ordered = sorted(c if c is not None else np.inf for c in counts)
    m = ordered[len(ordered) // 2]
    return None if not np.isfinite(m) else int(m)


def accuracy_rows(setup, cons, ladder):
    rows = {}
    for c, (run, family) in cons.items():
        acc = {g: setup.accuracy(c, run, family, g) for g in ladder}
        n = len(setup.images)
        complete = [first_stable(ladder, [acc[g]["error"][i] <= TOLERANCE for g in ladder]) for i in range(n)]
        agree = [first_stable(ladder, [acc[g]["rho"][i] >= AGREEMENT for g in ladder]) for i in range(n)]
        both = [first_stable(ladder, [acc[g]["error"][i] <= TOLERANCE and acc[g]["rho"][i] >= AGREEMENT
                                      for g in ladder]) for i in range(n)]
        rows[c] = {"family": family, "to_1pct": median_count(complete), "to_rho99": median_count(agree),
                   "faithful": median_count(both), "per_image_faithful": both,
                   "median_error": {g: float(np.median(acc[g]["error"])) for g in ladder},
                   "median_rho": {g: float(np.median(acc[g]["rho"])) for g in ladder},
                   "median_rho_ig": {g: float(np.median(acc[g]["rho_ig"])) for g in ladder}}
        print(f"  {setup.name} {c:32s} ->1% {rows[c]['to_1pct']}  ->rho.99 {rows[c]['to_rho99']}  "
              f"faithful {rows[c]['faithful']}", flush=True)
    return rows


def time_rows(setup, cons, rows, repeats, ladder):
    """Median seconds per image of each contender at its faithful count, interleaved. A contender never
    faithful on the ladder is timed at the ladder's last count: a lower bound of its time."""
    counts = {c: r["faithful"] if r["faithful"] is not None else ladder[-1] for c, r in rows.items()}
    for c, g in counts.items():  # warm-up: tracing, Xplique's explainer for this count
        cons[c][0](setup.images, setup.targets, g)
    times = {c: [] for c in counts}
    for _ in range(repeats):
        for c, g in counts.items():
            t = time.perf_counter()
            cons[c][0](setup.images, setup.targets, g)
            times[c].append((time.perf_counter() - t) / len(setup.images))
    for c in rows:
        rows[c]["seconds"] = statistics.median(times[c]) if c in times else None
        rows[c]["times"] = times.get(c)


def gradient_batches(model, images, repeats):
    """Seconds per gradient of one batch of B gradients (tfxattr's IG, left rule, B steps on one image)."""
    out = {}
    for b in BATCH_SIZES:
        run = tfx(model, "ig", lambda g: g, batch_size=b, rule="left")
        run(images[:1], np.zeros(1, np.int32), b)
        out[b] = []
        for _ in range(repeats):
            t = time.perf_counter()
            run(images[:1], np.zeros(1, np.int32), b)
            out[b].append((time.perf_counter() - t) / b)
    return {b: statistics.median(v) for b, v in out.items()}


def fmt(v, unit=""):
    return "-" if v is None else f"{v:.3f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def report(args, results, load_before, load_after):
    lines = [f"# Time to a faithful map ({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"{machine()}; load average {load_before:.2f} before, {load_after:.2f} after the timing; "
             f"{args.images} images, ladder {args.ladder} gradients, batch_size={BATCH}, median of {args.repeats} "
             f"interleaved runs after a warm-up; reference maps: {REFERENCE_STEPS} steps (IG trapezoid, IDGI left). "
             f"Faithful: completeness error <= {TOLERANCE:.0%} and Spearman >= {AGREEMENT} with the reference, "
             "from that count to the end of the ladder; median over images. Seconds are per image.", "",
             f"Command: `PYTHONPATH=. python bench/bench_time_to_faithful.py --models {' '.join(args.models)} "
             f"--images {args.images} --ladder {' '.join(map(str, args.ladder))} --repeats {args.repeats}"
             + ("" if args.contenders is None else " --contenders " + " ".join(repr(c) for c in args.contenders))
             + "`", ""]
    for m, (rows, per_gradient) in results.items():
        lines += [f"## {m}", "", "| contender | gradients to 1 % completeness | gradients to Spearman 0.99 | "
                  "gradients to both (per image) | seconds to both | Xplique / this |", "|---|---|---|---|---|---|"]
        xp_row = rows.get(XPLIQUE, {})
        xp = xp_row.get("seconds")
        for c, r in rows.items():
            if r["faithful"] is None:  # never faithful: its time at the last count bounds its time from below
                seconds, ratio = f"> {fmt(r['seconds'], ' s')} (at {args.ladder[-1]})", "-"
            else:
                seconds = fmt(r["seconds"], " s")
                ratio = "-" if not (xp and r["seconds"]) else \
                    ("> " if xp_row.get("faithful", 0) is None else "") + f"{xp / r['seconds']:.2f}"
            per_image = ", ".join(fmt(v) for v in r["per_image_faithful"])
            lines.append(f"| {c} | {fmt(r['to_1pct'])} | {fmt(r['to_rho99'])} | {fmt(r['faithful'])} ({per_image}) "
                         f"| {seconds} | {ratio} |")
        ours = [r["seconds"] for c, r in rows.items() if c.startswith("tfxattr") and r["seconds"]
                and r["faithful"] is not None]
        if xp and ours:
            bound = "more than " if xp_row.get("faithful", 0) is None else ""
            why = (f"; Xplique is not faithful within {args.ladder[-1]} gradients, so its time there is a lower "
                   "bound") if bound else ""
            lines += ["", "Xplique / fastest tfxattr contender, seconds to a faithful map: "
                      f"{bound}{xp / min(ours):.2f} (target >= 2){why}"]
        lines += ["", "Median completeness error / median Spearman with the method's reference (with the IG "
                  "reference), per gradient count:", "",
                  "| contender | " + " | ".join(str(g) for g in args.ladder) + " |",
                  "|---|" + "---|" * len(args.ladder)]
        for c, r in rows.items():
            cells = " | ".join(f"{r['median_error'][g]:.4f} / {r['median_rho'][g]:.4f}"
                               + (f" ({r['median_rho_ig'][g]:.4f})" if r["family"] != "ig" else "")
                               for g in args.ladder)
            lines.append(f"| {c} | {cells} |")
        if per_gradient:
            lines += ["", "Seconds per gradient of one gradient batch (tfxattr IG, one image, B steps), by batch size "
                      "B: " + ", ".join(f"B={b}: {s * 1000:.1f} ms" for b, s in per_gradient.items())]
        lines.append("")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["mobilenet_v2"])
    ap.add_argument("--images", type=int, default=5)
    ap.add_argument("--ladder", type=int, nargs="+", default=LADDER, help="gradient counts")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--contenders", nargs="+", default=None, metavar="TEXT",
                    help="keep only the contenders whose name contains one of these texts (default: all)")
    ap.add_argument("--phase", choices=["accuracy", "time", "all"], default="all")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "tfxattr_time_to_faithful"))
    ap.add_argument("--out", default=os.path.join(HERE, "results_time_to_faithful_mobilenet_v2.md"))
    args = ap.parse_args()
    unmatched = [text for text in args.contenders or [] if not any(text in c for c in contenders(None))]
    if unmatched:  # the names need no model: every contender calls it only when run
        ap.error(f"--contenders: {unmatched} match none of {sorted(contenders(None))}")
    results, load_before = {}, os.getloadavg()[0]
    for m in args.models:
        setup = Setup(m, args.images, args.cache)
        cons = {c: v for c, v in contenders(setup.model).items()
                if args.contenders is None or any(text in c for text in args.contenders)}
        rows = accuracy_rows(setup, cons, args.ladder)
        if args.phase == "accuracy":
            continue
        load_before = os.getloadavg()[0]
        time_rows(setup, cons, rows, args.repeats, args.ladder)
        results[m] = (rows, gradient_batches(setup.model, setup.images, args.repeats))
    if results:
        write_results(args.out, report(args, results, load_before, os.getloadavg()[0]),
                      {"args": vars(args), "results": {m: {"rows": r, "seconds_per_gradient": g}
                                                        for m, (r, g) in results.items()}})


if __name__ == "__main__":
    main()
