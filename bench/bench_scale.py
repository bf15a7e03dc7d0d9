"""Scale benchmark (issues 11 and 24): images per hour of one fixed evaluation with the local runner and with
Beam at 1 and 2 workers (scaling: 2 workers vs 1 on the same work), each Beam run's start-up share, bytes per
result record before vs after (curves at their breakpoints), and a projection of store size and worker-hours
for IDGI Tables 1-4 at full scale.

The fixed evaluation: the demo model, --images generated shapes images in --shards shards, ig+idgi (--steps)
and gradcam, insertion + sic_aic_idgi (IDGI Table 2's SIC/AIC: 25 thresholds, 100 bins). Each runner writes a
fresh store; wall time includes starting the workers (Beam) and loading the model. The start-up share of a
Beam run is bounded above by a run of one batch of images per worker (workers started, TensorFlow imported,
the model loaded, its functions traced, the batch scored, the workers closed) over the full run's time. Load
averages are recorded before and after each run (the machine is shared: measure only when it is idle).

    PYTHONPATH=. python bench/bench_scale.py                         # writes bench/results_scale.md
    PYTHONPATH=. python bench/bench_scale.py --images 16 --steps 8   # quick look
    PYTHONPATH=. python bench/bench_scale.py --runs beam1 beam2 --out /tmp/x.md   # only some runs
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
#: images attributed together (the evaluation's images_per_batch): one such batch per worker is the start-up run
BATCH = 4
RUNS = {"local1": ("local", 1), "beam1": ("beam", 1), "beam2": ("beam", 2)}


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its finished children (the Beam workers)."""
    import resource

    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


def evaluate(runner, workers, images, chunk, steps, out):
    from tfxattr import evaluation as ev

    return ev.evaluate(f"shapes:{images}", ["demo"], [f"ig+idgi:steps={steps}", "gradcam"], METRICS, out,
                       runner=runner, workers=workers, chunk_size=chunk, images_per_batch=BATCH, progress=False,
                       report=False, log=lambda m: None)


def run(runner, workers, images, chunk, steps, out):
    load = os.getloadavg()[0]
    cpu = cpu_seconds()
    start = time.perf_counter()
    summary = evaluate(runner, workers, images, chunk, steps, out)
    seconds = time.perf_counter() - start
    assert summary.computed == 2 * images, summary
    return {"runner": runner, "workers": workers, "seconds": seconds, "images_per_hour": images * 3600 / seconds,
            "cpu_seconds": cpu_seconds() - cpu, "load_before": load, "load_after": os.getloadavg()[0]}


def startup(workers, steps, out):
    """Seconds of a Beam run of one batch of images per worker: the start-up, plus one batch of work."""
    start = time.perf_counter()
    evaluate("beam", workers, BATCH * workers, BATCH, steps, out)
    return time.perf_counter() - start


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
    parser.add_argument("--images", type=int, default=448)
    parser.add_argument("--shards", type=int, default=8, help="a multiple of 2: both workers busy to the end")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--out", default=os.path.join(HERE, "results_scale.md"))
    args = parser.parse_args()
    from tfxattr import evaluation as ev

    chunk = -(-args.images // args.shards)
    tmp = tempfile.mkdtemp(prefix="bench_scale_")
    try:
        runs = {name: run(*RUNS[name], args.images, chunk, args.steps, os.path.join(tmp, name)) for name in args.runs}
        for name, r in runs.items():
            if r["runner"] == "beam":
                r["startup_seconds"] = startup(r["workers"], args.steps, os.path.join(tmp, f"startup-{name}"))
        fixed = next((name for name in ("beam2", "beam1") if name in runs), None)
        overhead = overhead_cpu = None
        if fixed:  # Beam's fixed cost without tracing: a pipeline over a finished store that computes nothing
            start, cpu = time.perf_counter(), cpu_seconds()
            evaluate("beam", runs[fixed]["workers"], args.images, chunk, args.steps, os.path.join(tmp, fixed))
            overhead, overhead_cpu = time.perf_counter() - start, cpu_seconds() - cpu
        sizes = {}
        if "local1" in runs:  # the records of IDGI Tables 1-4 (all four metrics in one record), before vs after
            tables = os.path.join(tmp, "tables")
            ev.evaluate("shapes:8", ["demo"], [f"ig+idgi:steps={args.steps}"], TABLE_METRICS, tables,
                        images_per_batch=BATCH, progress=False, report=False, log=lambda m: None)
            pair = os.path.join(tmp, "pair")
            ev.evaluate("shapes:8", ["demo"], [f"ig+idgi:steps={args.steps}"], PAIR_METRICS, pair,
                        images_per_batch=BATCH, progress=False, report=False, log=lambda m: None)
            sizes = {"insertion + sic_aic_idgi": record_bytes(os.path.join(tmp, "local1")),
                     "insertion + sic_aic (PAIR: 1,001-point curves) + localization": record_bytes(pair),
                     "IDGI Tables 1-4 (4 metrics)": record_bytes(tables)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_results(args.out, report(args, chunk, runs, overhead, overhead_cpu, fixed, sizes),
                  {"runs": runs, "beam_overhead_seconds": overhead, "beam_overhead_cpu_seconds": overhead_cpu,
                   "record_bytes": {k: {"before": b, "after": a} for k, (b, a) in sizes.items()},
                   "images": args.images, "shards": args.shards, "steps": args.steps})


def report(args, chunk, runs, overhead, overhead_cpu, fixed, sizes):
    """The Markdown lines of the results."""
    shards = -(-args.images // chunk)
    command = f"PYTHONPATH=. python bench/bench_scale.py --images {args.images} --shards {args.shards} " \
              f"--steps {args.steps}" + ("" if args.runs == list(RUNS) else " --runs " + " ".join(args.runs))
    lines = ["# Scale benchmark (issues 11 and 24)", "", machine() + "; the load average (1 min) before and after "
             "each run is listed.", "", f"Command: `{command}`", "",
             f"## Images per hour: demo model, {args.images} images in {shards} shards of {chunk}, ig+idgi "
             f"(steps={args.steps}) and gradcam, insertion + sic_aic_idgi", "",
             "| runner | workers | seconds | images / hour | vs local | vs 1 Beam worker (efficiency) | start-up "
             "share (at most) | CPU seconds (all processes) | load before/after |",
             "|---|---|---|---|---|---|---|---|---|"]
    local, one = runs.get("local1"), runs.get("beam1")
    for r in runs.values():
        versus = (f"{one['seconds'] / r['seconds']:.2f}x ({one['seconds'] / r['seconds'] / r['workers']:.2f})"
                  if r["runner"] == "beam" and one else "–")
        share = (f"{r['startup_seconds'] / r['seconds']:.1%} ({r['startup_seconds']:.1f} s)"
                 if "startup_seconds" in r else "–")
        lines.append(f"| {r['runner']} | {r['workers']} | {r['seconds']:.1f} | {r['images_per_hour']:.0f} | "
                     + (f"{local['seconds'] / r['seconds']:.2f}" if local else "–")
                     + f" | {versus} | {share} | {r['cpu_seconds']:.1f} | {r['load_before']:.1f} / "
                     f"{r['load_after']:.1f} |")
    lines += ["", "Start-up share (at most): a run of one batch of images per worker (start the workers, import "
              "TensorFlow, load the model, trace its functions, score the batch, close the workers) over the run's "
              "time."]
    if overhead is not None:
        lines += ["", f"Beam's fixed cost without tracing ({runs[fixed]['workers']} workers: starting the pipeline "
                  f"and the workers, importing TensorFlow, loading the model, reading the store, closing the "
                  f"workers) measured as a pipeline over the finished store that computes nothing: {overhead:.1f} s "
                  f"({overhead_cpu:.1f} CPU seconds)."]
    if sizes:
        lines += ["", "## Bytes per result record", "",
                  "| metrics in the record | before (curves whole) | after (curves at their breakpoints) | ratio |",
                  "|---|---|---|---|"]
        for name, (before, after) in sizes.items():
            lines.append(f"| {name} | {before:.0f} | {after:.0f} | {before / after:.1f}x |")
        full_records = FULL["models"] * FULL["images"] * FULL["methods"]
        before, after = sizes["IDGI Tables 1-4 (4 metrics)"]
        lines += ["", f"Full scale, IDGI Tables 1-4: {FULL['models']} models x {FULL['images']:,} images x "
                  f"{FULL['methods']} methods = {full_records:,} records: {before * full_records / 1e9:.1f} GB "
                  f"before, {after * full_records / 1e9:.1f} GB after (in one part file per shard and method)."]
    return lines


if __name__ == "__main__":
    main()
