"""The faithfulness cost of reduced precision (issue 15) on the demo benchmark's data: for each method,
float32 vs bfloat16 (and float16): Spearman of the maps, completeness error against the float32 model's
f(x) - f(b), insertion and SIC (IDGI Table 2 settings), seconds per image (interleaved, median of
--repeats). Images: generated shapes the demo model classifies correctly (as the README's demo benchmark).

    python bench/bench_precision.py --images 40
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from benchlib import machine, write_results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
METHODS = {"gradient": {}, "ig": {"steps": 200}, "ig+idgi": {"steps": 200}, "blur_ig+idgi": {"steps": 200},
           "guided_ig+idgi": {"steps": 200}, "iia2": {}, "gradcam": {}}
COMPLETE = ("ig", "ig+idgi")  # baseline paths from black: completeness is f(x) - f(0)


def main():
    import tfxattr
    from tfxattr.demo import load_demo_model, make_demo_data
    from tfxattr.metrics import compute

    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--precisions", nargs="+", default=["bfloat16", "float16"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(HERE, "results_precision.md"))
    args = ap.parse_args()
    load_before = os.getloadavg()
    model = load_demo_model()
    data = make_demo_data(args.images, seed=7)
    adapter = tfxattr.as_model(model)
    keep = adapter.scores(data["images"].astype(np.float32)).argmax(1) == data["labels"]
    images, targets = data["images"][keep].astype(np.float32), data["labels"][keep].astype(np.int32)
    delta = adapter.values(images, targets).numpy() - adapter.values(0 * images, targets).numpy()
    precisions = ["float32"] + list(args.precisions)
    rows = {}
    for name, opts in METHODS.items():
        runs = {p: (lambda p=p: tfxattr.explain(model, images, name, targets=targets, precision=p, progress=False,
                                                **opts)) for p in precisions}
        exps = {p: run() for p, run in runs.items()}  # warm-up and the maps
        times = {p: [] for p in precisions}
        for _ in range(args.repeats):
            for p, run in runs.items():
                t = time.perf_counter()
                run()
                times[p].append((time.perf_counter() - t) / len(images))
        for p, exp in exps.items():
            rho = [spearmanr(a.ravel(), b.ravel())[0] for a, b in zip(exps["float32"].map, exp.map)]
            ins = compute("insertion", model, images, exp.map, targets).aggregate()
            sic = compute("sic_aic_idgi", model, images, exp.map, targets).aggregate()
            err = np.abs(exp.attribution.reshape(len(images), -1).sum(1) / delta - 1) if name in COMPLETE else None
            rows[name, p] = {"rho_min": float(np.min(rho)), "rho_median": float(np.median(rho)),
                             "completeness_median": None if err is None else float(np.median(err)),
                             "completeness_max": None if err is None else float(np.max(err)),
                             "insertion": ins["insertion"], "sic": sic["sic"],
                             "seconds": statistics.median(times[p])}
            r = rows[name, p]
            print(f"{name:16s} {p:9s} rho {r['rho_median']:.4f} (min {r['rho_min']:.4f}) insertion "
                  f"{r['insertion']:.3f} sic {r['sic']:.3f} {r['seconds']:.4f} s", flush=True)
    lines = [f"# Reduced precision on the demo model ({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"{machine()}; load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after (shared "
             f"machine); {len(images)} generated images the demo model classifies correctly (of {args.images}, "
             f"seed 7); median of {args.repeats} interleaved runs after a warm-up.", "",
             "| method | precision | Spearman vs float32 (median / min) | completeness error (median / max) | "
             "insertion ↑ | SIC ↑ | s / image |", "|---|---|---|---|---|---|---|"]
    for (name, p), r in rows.items():
        comp = "-" if r["completeness_median"] is None else \
            f"{r['completeness_median']:.4f} / {r['completeness_max']:.4f}"
        lines.append(f"| {name} | {p} | {r['rho_median']:.4f} / {r['rho_min']:.4f} | {comp} | "
                     f"{r['insertion']:.3f} | {r['sic']:.3f} | {r['seconds']:.4f} |")
    write_results(args.out, lines, {"args": vars(args), "rows": {f"{k[0]}|{k[1]}": v for k, v in rows.items()}})


if __name__ == "__main__":
    main()
