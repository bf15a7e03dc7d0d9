"""``jobs=``: SIC/AIC and ROAD wall seconds per image at jobs=1 vs jobs=N (issue 24 item 1).

MobileNetV2 (keras_apps, weights=None, BatchNorm statistics from one batch as bench/bench_metrics.py),
``--images`` generated images at ``--size``, random maps plus the object masks. For every metric the
``--jobs`` values run interleaved in one process (each call starts its own pool, as ``compute()`` does), medians
of ``--repeats`` rounds after a warm-up; the scores must be identical across jobs values.

    PYTHONPATH=. python bench/bench_jobs.py                    # writes bench/results_jobs.md/.json
    PYTHONPATH=. python bench/bench_jobs.py --images 2 --size 64 --repeats 1 --metrics sic_aic --out /tmp/j.md

On a shared machine the other processes take cores too: the load average is printed with the table.
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

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfxattr  # noqa: E402
from benchlib import machine, write_results  # noqa: E402
from tfxattr.metrics import IDGI_THRESHOLDS, compute  # noqa: E402
from tfxattr.parallel import available_cores  # noqa: E402

#: metric -> options: PAIR's interpolated base (qhull + WebP) and IDGI's blur base (WebP), 25 thresholds; ROAD
METRICS = {"sic_aic": dict(thresholds=IDGI_THRESHOLDS, min_pred_value=0.0),
           "sic_aic_idgi": dict(min_pred_value=0.0),
           "road": dict()}


def model_for(images, size):
    import keras_apps

    spec = keras_apps.get("mobilenet_v2")
    model = keras_apps.build("mobilenet_v2", weights=None) if size == 224 else keras.applications.MobileNetV2(
        input_shape=(size, size, 3), weights=None, classifier_activation=None)  # a smaller run (bench/gpu.sh on CPU)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(spec.preprocess(images.astype("float32")), training=True)
    return tfxattr.as_model(model, output="probability", preprocess=spec.preprocess, batch_size=32)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--metrics", nargs="+", default=list(METRICS), choices=list(METRICS))
    ap.add_argument("--out", default=os.path.join(HERE, "results_jobs.md"))
    args = ap.parse_args(argv)
    from tfxattr.synthetic import make_shapes

    keras.utils.set_random_seed(0)
    data = make_shapes(args.images, size=args.size, seed=0)
    x = data["images"].astype(np.float32)
    adapter = model_for(x, args.size)
    rng = np.random.default_rng(0)
    maps = (rng.random(x.shape[:3]) + 2.0 * data["masks"]).astype(np.float32)
    rows, data_out = [], {"machine": machine(), "cores": available_cores(), "results": {}}
    for name in args.metrics:
        def call(jobs):
            return compute(name, adapter, x, maps, jobs=jobs, **METRICS[name])
        ref = call(args.jobs[0])  # warm-up (traces the model) and the reference numbers
        times = {j: [] for j in args.jobs}
        identical = True
        for _ in range(args.repeats):
            for j in args.jobs:
                start = time.perf_counter()
                res = call(j)
                times[j].append(time.perf_counter() - start)
                identical &= all(np.array_equal(ref.scores[k], res.scores[k], equal_nan=True) for k in ref.scores)
            print(name, {j: round(t[-1], 2) for j, t in times.items()}, os.getloadavg()[0], file=sys.stderr)
        med = {j: statistics.median(t) for j, t in times.items()}
        for j in args.jobs:
            rows.append(f"| {name} | {j} | {med[j] / args.images:.2f} | {med[j] / med[args.jobs[0]]:.2f} | "
                        f"{'yes' if identical else 'NO'} |")
        data_out["results"][name] = {"times": times, "identical": bool(identical)}
    load = os.getloadavg()
    data_out["load"] = load
    lines = ["# jobs= for the metrics' per-image CPU work (issue 24 item 1)", "",
             f"`PYTHONPATH=. python bench/bench_jobs.py --images {args.images} --size {args.size} --repeats "
             f"{args.repeats}`; {machine()}; {available_cores()} cores available to the process; MobileNetV2 "
             f"weights=None {args.size}x{args.size}, {args.images} images per call, batch_size 32; medians of "
             f"{args.repeats} interleaved rounds after a warm-up; load average {load[0]:.1f} / {load[1]:.1f} / "
             f"{load[2]:.1f} at the end (a shared machine: final figures need an idle one).", "",
             f"| metric | jobs | wall s / image | x jobs={args.jobs[0]} | same scores |", "|---|---|---|---|---|",
             *rows]
    write_results(args.out, lines, data_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
