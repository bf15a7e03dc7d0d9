"""Scale benchmark (issue 11): images per hour of one fixed evaluation with the local runner and with Beam at
1 and 2 workers (scaling efficiency), bytes per result record before vs after (curves at their breakpoints),
and a projection of store size and worker-hours for IDGI Tables 1-4 at full scale.

The fixed evaluation: the demo model, --images generated shapes images, ig+idgi (--steps) and gradcam,
insertion + sic_aic_idgi (IDGI Table 2's SIC/AIC: 25 thresholds, 100 bins). Each runner writes a fresh store;
wall time includes starting the workers (Beam) and loading the model. Load averages are recorded before and
after each run (the machine is shared).

    python bench/bench_scale.py                        # writes bench/results_scale.md
    python bench/bench_scale.py --images 8 --steps 8   # quick look
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchlib import machine, write_results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
METRICS = ["insertion", "sic_aic_idgi"]
#: IDGI Tables 1-4: insertion, SIC/AIC (WebP), SIC/AIC (MS-SSIM), localization; one record holds all four
TABLE_METRICS = ["insertion", "sic_aic_idgi", "sic_aic_idgi_msssim", "localization"]
#: IDGI's full scale (eval/README.md, NOTES.md): 11 Keras applications, ~35K correctly classified ImageNet
#: validation images per model (of 50K), 8 methods (IG, GIG, BlurIG, each with and without IDGI, + 2 more)
#: PAIR's SIC/AIC (curves interpolated on 1,001 points): the records the ~12 KB figure of the issue describes
PAIR_METRICS = ["insertion", "sic_aic:min_pred_value=0.5", "localization"]
FULL = {"models": 11, "images": 35_000, "methods": 8}


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its finished children (the Beam workers)."""
    import resource

    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


def run(runner, workers, images, steps, out):
    from tfxattr import evaluation as ev

    load = os.getloadavg()[0]
    cpu = cpu_seconds()
    start = time.perf_counter()
    summary = ev.evaluate(f"shapes:{images}", ["demo"], [f"ig+idgi:steps={steps}", "gradcam"], METRICS, out,
                          runner=runner, workers=workers, chunk_size=max(1, images // 4), images_per_batch=4,
                          progress=False, report=False, log=lambda m: None)
    seconds = time.perf_counter() - start
    assert summary.computed == 2 * images, summary
    return {"runner": runner, "workers": workers, "seconds": seconds, "images_per_hour": images * 3600 / seconds,
            "cpu_seconds": cpu_seconds() - cpu,
            "load_before": load, "load_after": os.getloadavg()[0]}


def record_bytes(out):
    """Mean bytes of a result line as stored now, and as the format before stored it (every curve whole,
    rounded to 6 decimals, nulls where skipped), from the same records."""
    from tfxattr.evaluation.store import curve_values, iter_records, rounded

    grids = {r["metric"]: r for r in iter_records(out) if r["kind"] == "metric"}
    now, before = [], []
    for r in iter_records(out):
        if r["kind"] != "result":
            continue
        now.append(len(json.dumps(r, separators=(",", ":"))) + 1)
        old = dict(r, curves={m: {k: rounded(curve_values(y, grids[m]["curves"][k]["x"])) for k, y in c.items()}
                              for m, c in r["curves"].items()})
        before.append(len(json.dumps(old, separators=(",", ":"))) + 1)
    return sum(before) / len(before), sum(now) / len(now)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--out", default=os.path.join(HERE, "results_scale.md"))
    args = parser.parse_args()
    from tfxattr import evaluation as ev

    tmp = tempfile.mkdtemp(prefix="bench_scale_")
    try:
        runs = [run(r, w, args.images, args.steps, os.path.join(tmp, f"{r}{w}"))
                for r, w in (("local", 1), ("beam", 1), ("beam", 2))]
        start, cpu = time.perf_counter(), cpu_seconds()  # Beam's fixed cost: a pipeline over a finished store
        ev.evaluate(f"shapes:{args.images}", ["demo"], [f"ig+idgi:steps={args.steps}", "gradcam"], METRICS,
                    os.path.join(tmp, "beam2"), runner="beam", workers=2, chunk_size=max(1, args.images // 4),
                    images_per_batch=4, progress=False, report=False, log=lambda m: None)
        overhead, overhead_cpu = time.perf_counter() - start, cpu_seconds() - cpu
        # the records of IDGI Tables 1-4 (all four metrics in one record), before vs after
        tables = os.path.join(tmp, "tables")
        ev.evaluate("shapes:8", ["demo"], [f"ig+idgi:steps={args.steps}"], TABLE_METRICS, tables, images_per_batch=4,
                    progress=False, report=False, log=lambda m: None)
        pair = os.path.join(tmp, "pair")
        ev.evaluate("shapes:8", ["demo"], [f"ig+idgi:steps={args.steps}"], PAIR_METRICS, pair, images_per_batch=4,
                    progress=False, report=False, log=lambda m: None)
        sizes = {"insertion + sic_aic_idgi": record_bytes(os.path.join(tmp, "local1")),
                 "insertion + sic_aic (PAIR: 1,001-point curves) + localization": record_bytes(pair),
                 "IDGI Tables 1-4 (4 metrics)": record_bytes(tables)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    local = runs[0]["images_per_hour"]
    one = runs[1]["images_per_hour"]
    lines = ["# Scale benchmark (issue 11)", "", machine() + "; the machine was shared with other sessions: the "
             "load average (1 min) before and after each run is listed.", "",
             f"Command: `python bench/bench_scale.py --images {args.images} --steps {args.steps}`", "",
             f"## Images per hour: demo model, {args.images} images, ig+idgi (steps={args.steps}) and gradcam, "
             "insertion + sic_aic_idgi", "",
             "| runner | workers | seconds | images / hour | vs local | scaling vs 1 Beam worker | CPU seconds "
             "(all processes) | load before/after |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['runner']} | {r['workers']} | {r['seconds']:.1f} | {r['images_per_hour']:.0f} | "
                     f"{r['images_per_hour'] / local:.2f} | "
                     + (f"{r['images_per_hour'] / one / r['workers']:.2f} efficiency" if r["runner"] == "beam" else "–")
                     + f" | {r['cpu_seconds']:.1f} | {r['load_before']:.1f} / {r['load_after']:.1f} |")
    lines += ["", f"Beam's fixed cost (2 workers: starting the pipeline and the workers, importing TensorFlow, loading "
              f"the model, reading the store) measured as a pipeline over the finished store that computes nothing: "
              f"{overhead:.1f} s ({overhead_cpu:.1f} CPU seconds).", "", "## Bytes per result record", "",
              "| metrics in the record | before (curves whole) | after (curves at their breakpoints) | ratio |",
              "|---|---|---|---|"]
    for name, (before, after) in sizes.items():
        lines.append(f"| {name} | {before:.0f} | {after:.0f} | {before / after:.1f}x |")
    full_records = FULL["models"] * FULL["images"] * FULL["methods"]
    before, after = sizes["IDGI Tables 1-4 (4 metrics)"]
    lines += ["", f"Full scale, IDGI Tables 1-4: {FULL['models']} models x {FULL['images']:,} images x "
              f"{FULL['methods']} methods = {full_records:,} records: {before * full_records / 1e9:.1f} GB before, "
              f"{after * full_records / 1e9:.1f} GB after (in one part file per shard and method)."]
    data = {"runs": runs, "beam_overhead_seconds": overhead, "beam_overhead_cpu_seconds": overhead_cpu,
            "record_bytes": {k: {"before": b, "after": a} for k, (b, a) in sizes.items()},
            "full_records": full_records, "images": args.images, "steps": args.steps}
    write_results(args.out, lines, data)


if __name__ == "__main__":
    main()
