"""Metrics benchmark (issue 4): SIC+AIC vs PAIR's compute_pic_metric, and insertion+deletion per image.

MobileNetV2 (keras_apps, weights=None) at 224x224. An untrained MobileNetV2's features are ~1e-12
(BatchNorm's initial statistics do not match its activations), so every image gets the same scores
and PAIR would stop at its first check; its BatchNorm statistics are therefore set from one batch of
synthetic shapes (momentum 0, one training-mode pass). The cost of a prediction is unchanged.

SIC+AIC: one image, the 25 IDGI thresholds, PAIR's interpolated base from 1% random pixels (the only
base PAIR has), the same random mask for both. PAIR needs two calls (a softmax and an accuracy
pred_func, batch size 1); tfxattr gives both from one call (batch_size 32). PAIR is timed as shipped
(BLAS threads as installed: scipy's per-triangle LAPACK calls then wake every OpenBLAS thread, 2x to
10x slower depending on the load; the "triangulation" rows measure that on one 224x224 mask) and with
BLAS pinned to one thread like tfxattr (its best case: what is left is the algorithmic gain). Medians of
--repeats runs after one warm-up; the machine is shared, so absolute times are noisy.

    python bench/bench_metrics.py                # writes bench/results_metrics.md
    python bench/bench_metrics.py --repeats 1 --out /tmp/r.md

--before-after (issue 11): SIC+AIC per 224x224 image with this checkout's ``tfxattr.metrics.pic`` vs the
one of commit ``--before`` (read with git), interleaved in one process, in CPU seconds of the process
(the cost on one core, robust to a shared machine's load; run it under ``taskset -c 0`` for one core)
and wall seconds; the scores and information levels must be identical; then a cProfile of the CPU
work (bokeh images + WebP) of the new code. It replaces the section it wrote before in ``--out``.

    PYTHONPATH=. taskset -c 0 python bench/bench_metrics.py --before-after --repeats 2
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfxattr  # noqa: E402
from benchlib import timings  # noqa: E402
from tfxattr.metrics import IDGI_THRESHOLDS, compute  # noqa: E402
from tfxattr.metrics.bokeh import _one_blas_thread, interpolate_unknown  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = 224
BEFORE = "fb52ec8"  # the last commit before issue 11's SIC/AIC changes
SECTION = "## SIC/AIC before vs after (issue 11)"


def calibrated_mobilenet(images):
    import keras_apps

    spec = keras_apps.get("mobilenet_v2")
    model = keras_apps.build("mobilenet_v2", weights=None)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(spec.preprocess(images.astype("float32")), training=True)
    return tfxattr.as_model(model, output="probability", preprocess=spec.preprocess, batch_size=32)


def pick_image(adapter, images, rng):
    """The first image whose top-1 class scores lower, and is not the top-1, on PAIR's base image."""
    for index, img in enumerate(images):
        seed = np.zeros(SIZE * SIZE, bool)
        seed[rng.choice(SIZE * SIZE, int(SIZE * SIZE * 0.01), replace=False)] = True
        seed = seed.reshape(SIZE, SIZE)
        p = adapter.probabilities(np.stack([img, interpolate_unknown(img, seed)]).astype(np.float32))
        target = int(p[0].argmax())
        if p[1].argmax() != target and p[1, target] < p[0, target]:
            return index, seed, target
    raise RuntimeError("no image passes PAIR's checks on this model")


def median_time(fn, repeats, warmup=True):
    times = timings(fn, repeats, warmup)
    return statistics.median(times), times


def pair_sic_aic(adapter, img, saliency_map, seed, target, pinned=False):
    import saliency.metrics.pic as pair_pic

    pair_pic.np.trapz = np.trapezoid  # NumPy 2 removed np.trapz, which PAIR calls (benchmark process only)

    def sic(batch):
        return adapter.probabilities(batch.astype(np.float32))[:, target]

    def aic(batch):
        return (np.argmax(adapter.probabilities(batch.astype(np.float32)), -1) == target).astype(np.float64)
    kw = dict(min_pred_value=0.0, saliency_thresholds=list(IDGI_THRESHOLDS))
    with _one_blas_thread() if pinned else contextlib.nullcontext():
        return (pair_pic.compute_pic_metric(img, saliency_map, seed, sic, **kw).auc,
                pair_pic.compute_pic_metric(img, saliency_map, seed, aic, **kw).auc)


def triangulation_seconds(pinned, rng):
    """One Delaunay triangulation + barycentric transforms of half the pixels of a 224x224 image."""
    from scipy.spatial import Delaunay

    points = np.argwhere(rng.random((SIZE, SIZE)) < 0.5).astype(np.float64)

    def run():
        Delaunay(points).transform  # noqa: B018 - the property computes the per-triangle transforms
    if pinned:
        with _one_blas_thread():
            return median_time(run, 3, warmup=False)[0]
    return median_time(run, 3, warmup=False)[0]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def ours_sic_aic(adapter, img, saliency_map, seed, target):
    res = compute("sic_aic", adapter, img[None].astype(np.float32), saliency_map[None], targets=target,
                  thresholds=IDGI_THRESHOLDS, random_mask=seed, min_pred_value=0.0, batch_size=32)
    return res.scores["sic"][0], res.scores["aic"][0]


def pic_module_at(commit):
    """``tfxattr/metrics/pic.py`` as it was at ``commit``, imported as a module."""
    root = os.path.dirname(HERE)
    src = subprocess.run(["git", "-C", root, "show", f"{commit}:tfxattr/metrics/pic.py"], capture_output=True,
                         text=True, check=True).stdout
    src = src.replace("from ..", "from tfxattr.").replace("from .base import", "from tfxattr.metrics.base import") \
        .replace("from .inputs import", "from tfxattr.metrics.inputs import")
    module = types.ModuleType(f"pic_{commit}")
    exec(compile(src, f"pic_{commit}.py", "exec"), module.__dict__)
    return module


def cpu_and_wall(fn):
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    return time.process_time() - cpu, time.perf_counter() - wall, out


def before_after(args, adapter, img, saliency_map, seed, target):
    """SIC+AIC per image, old vs new module interleaved; identical scores; a profile of the new CPU work."""
    import cProfile
    import io
    import pstats

    import tfxattr.metrics.pic as new
    from tfxattr.metrics.bokeh import bokeh_images, to_uint8
    from tfxattr.metrics.information import information_levels

    old = pic_module_at(args.before)
    x, m = img[None].astype(np.float32), saliency_map[None]
    runs = {"interpolate": dict(thresholds=IDGI_THRESHOLDS, random_mask=seed),
            "blur": dict(thresholds=IDGI_THRESHOLDS, baseline="blur", blur_sigma=20.0)}
    retired = {"baseline": "base", "blur_sigma": "blur_radius"}  # the option names of the module before
    rows, same, data = [], [], {}
    for base, kw in runs.items():
        def call(module):
            given = kw if module is new else {retired.get(k, k): v for k, v in kw.items()}
            return module.sic_aic(adapter, x, m, targets=target, min_pred_value=0.0, batch_size=32, **given)
        call(new)  # warm-up: traces the model
        times = {"before": [], "after": []}
        results = {}
        for _ in range(args.repeats):
            for name, module in (("before", old), ("after", new)):
                cpu, wall, results[name] = cpu_and_wall(lambda: call(module))
                times[name].append((cpu, wall))
                log(f"{base} {name}: {cpu:.2f} CPU s, {wall:.2f} s")
        med = {k: (statistics.median(c for c, _ in v), statistics.median(w for _, w in v)) for k, v in times.items()}
        a, b = results["before"], results["after"]
        identical = all(np.array_equal(a.scores[k], b.scores[k]) for k in ("sic", "aic")) and np.array_equal(
            a.extras["information"], b.extras["information"])
        same.append(f"{base}: SIC {b.scores['sic'][0]:.10f}, AIC {b.scores['aic'][0]:.10f} before and after, "
                    f"scores and information levels {'identical' if identical else 'DIFFERENT'}")
        base_name = "PAIR's interpolated base (sic_aic, 25 IDGI thresholds)" if base == "interpolate" \
            else "PIL blur base (sic_aic_idgi)"
        rows.append(f"| {base_name} | {med['before'][0]:.2f} | {med['after'][0]:.2f} | "
                    f"**{med['before'][0] / med['after'][0]:.2f}x** | {med['before'][1]:.2f} | {med['after'][1]:.2f} |")
        data[base] = {"times": times, "identical": bool(identical)}
    u8 = to_uint8(x, adapter.pixel_range)
    profile = cProfile.Profile(time.process_time)  # CPU seconds, as the table
    profile.enable()
    stack = bokeh_images(u8[0], saliency_map, np.asarray(IDGI_THRESHOLDS), "interpolate", seed[None], 0, 20.0)
    information_levels(u8, [stack], "webp")
    profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(8)
    top = [line for line in text.getvalue().splitlines() if line.strip()][-9:]
    load = os.getloadavg()
    lines = [SECTION, "",
             "`PYTHONPATH=. taskset -c 0 python bench/bench_metrics.py --before-after --repeats "
             f"{args.repeats}`: one MobileNetV2 224x224 image (as above), SIC + AIC in one call, this checkout's "
             "`tfxattr.metrics.pic` vs commit "
             f"{args.before}'s, interleaved, medians of {args.repeats}. CPU seconds of the process = the cost on "
             f"one core (robust to the shared machine's load; load average {load[0]:.1f} at the end); wall "
             "seconds for reference.", "",
             "| base image | before CPU s | after CPU s | speed-up | before wall s | after wall s |",
             "| --- | --- | --- | --- | --- | --- |", *rows, "", *[f"- {line}" for line in same], "",
             "cProfile of the new CPU work for the interpolated base (26 triangulations + 26 WebP encodes; qhull "
             "runs inside `interpolate_unknown`):", "", "```", *top, "```", ""]
    previous = open(args.out).read() if os.path.exists(args.out) else ""
    if SECTION in previous:
        previous = previous[:previous.index(SECTION)]
    with open(args.out, "w") as f:
        f.write(previous.rstrip("\n") + "\n\n" + "\n".join(lines))
    print("\n".join(lines))
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pair-repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(HERE, "results_metrics.md"))
    ap.add_argument("--before-after", action="store_true", help="only SIC/AIC before vs after (issue 11)")
    ap.add_argument("--before", default=BEFORE, help="the commit whose pic.py is 'before'")
    args = ap.parse_args()
    from tfxattr.synthetic import make_shapes

    keras.utils.set_random_seed(0)
    data = make_shapes(8, size=SIZE, seed=0)
    adapter = calibrated_mobilenet(data["images"])
    rng = np.random.default_rng(0)
    index, seed, target = pick_image(adapter, data["images"], rng)
    img = data["images"][index]
    saliency_map = (rng.random((SIZE, SIZE)) + 2.0 * data["masks"][index]).astype(np.float32)
    if args.before_after:
        return before_after(args, adapter, img, saliency_map, seed, target)

    log(f"image {index}, target {target}")
    ours_t, ours_all = median_time(lambda: ours_sic_aic(adapter, img, saliency_map, seed, target), args.repeats)
    log(f"tfxattr sic_aic {ours_all}")
    pair_t, pair_all = median_time(lambda: pair_sic_aic(adapter, img, saliency_map, seed, target),
                                   args.pair_repeats, warmup=False)
    log(f"PAIR as shipped {pair_all}")
    pinned_t, pinned_all = median_time(lambda: pair_sic_aic(adapter, img, saliency_map, seed, target, pinned=True),
                                       args.pair_repeats, warmup=False)
    log(f"PAIR pinned {pinned_all}")
    ours_auc = ours_sic_aic(adapter, img, saliency_map, seed, target)
    pair_auc = pair_sic_aic(adapter, img, saliency_map, seed, target, pinned=True)
    idgi_t, _ = median_time(lambda: compute("sic_aic_idgi", adapter, img[None].astype(np.float32),
                                            saliency_map[None], targets=target, min_pred_value=0.0), args.repeats)

    n = 4
    images = data["images"][:n].astype(np.float32)
    maps = rng.random((n, SIZE, SIZE)).astype(np.float32)

    def insdel():
        compute("insertion", adapter, images, maps, step=0.05)
        compute("deletion", adapter, images, maps, step=0.05)
    insdel_t, insdel_all = median_time(insdel, args.repeats)
    log(f"insertion+deletion {insdel_all}")
    tri_default, tri_pinned = triangulation_seconds(False, rng), triangulation_seconds(True, rng)

    try:
        import threadpoolctl  # noqa: F401
        blas = "threadpoolctl installed: BLAS pinned to 1 thread during the interpolation"
    except ImportError:
        blas = "threadpoolctl not installed: BLAS threads not pinned"
    lines = [
        "# Metrics benchmark (issue 4)", "",
        f"`python bench/bench_metrics.py` on {platform.machine()}, {os.cpu_count()} cores (shared, noisy), "
        f"TF {__import__('tensorflow').__version__}, NumPy {np.__version__}; {blas}.",
        "MobileNetV2 (weights=None, BatchNorm statistics from one batch), 224x224, batch_size 32.", "",
        "| measurement | median | runs |", "| --- | --- | --- |",
        f"| PAIR compute_pic_metric as shipped, SIC + AIC (2 calls, batch-1 pred_func), 25 thresholds | "
        f"{pair_t:.2f} s | " + ", ".join(f"{t:.2f}" for t in pair_all) + " |",
        f"| PAIR, the same with BLAS pinned to 1 thread (its best case) | {pinned_t:.2f} s | "
        + ", ".join(f"{t:.2f}" for t in pinned_all) + " |",
        f"| tfxattr sic_aic, SIC + AIC (1 call, batched), same thresholds and mask | {ours_t:.2f} s | "
        + ", ".join(f"{t:.2f}" for t in ours_all) + " |",
        f"| **speed-up vs PAIR as shipped** | **{pair_t / ours_t:.1f}x** | |",
        f"| speed-up vs PAIR with BLAS pinned | {pinned_t / ours_t:.1f}x | |",
        f"| tfxattr sic_aic_idgi (PIL blur base, 25 thresholds), one image | {idgi_t:.2f} s | |",
        f"| tfxattr insertion + deletion, 5% steps (21 + 21 images), per image ({n} images) | "
        f"{insdel_t / n:.2f} s | " + ", ".join(f"{t / n:.2f}" for t in insdel_all) + " |",
        f"| triangulation + transforms of 25k pixels, BLAS threads as installed | {tri_default:.2f} s | 3 |",
        f"| the same, BLAS pinned to 1 thread | {tri_pinned:.2f} s | 3 |", "",
        f"Same numbers: SIC {ours_auc[0]:.8f} (tfxattr) vs {pair_auc[0]:.8f} (PAIR), "
        f"AIC {ours_auc[1]:.8f} vs {pair_auc[1]:.8f}; |difference| "
        f"{max(abs(ours_auc[0] - pair_auc[0]), abs(ours_auc[1] - pair_auc[1])):.2e}.", "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
