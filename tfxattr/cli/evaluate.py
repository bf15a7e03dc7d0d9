"""``tfxattr eval``: score methods with metrics on models over a data set (resumable), then the reports."""
from __future__ import annotations

import os

from .model_flags import add_model_flags, eval_model_flags, model_flags

HELP = "score methods with metrics on models over a data set (resumable)"


def add_parser(sub, common):
    from ..evaluation.config import RUNNERS, TARGETS, EvaluationConfig
    from ..evaluation.datasets import RESIZE

    d = EvaluationConfig()  # the flags' defaults are the config's
    v = sub.add_parser("eval", help=HELP, parents=[common],
                       description="Score every method with every metric on every model. Results are appended "
                                   "to OUT/results.jsonl as images finish (a killed run resumes where it stopped); "
                                   "OUT/report.md, OUT/report.html (one self-contained page: tables, curves and "
                                   "example maps) and OUT/plots/ are rebuilt at the end. Image files that cannot "
                                   "be read are skipped and listed in the report.")
    v.add_argument("--data", required=True,
                   help="shapes:N (generated shapes with masks), an .npz (images, labels, masks), an image folder "
                        "(class subfolders named after the model's classes, ImageNet wnids or class indices; "
                        "or labels.csv), or a tfds name such as imagenet2012")
    v.add_argument("--split", default=d.split, help="tfds split")
    v.add_argument("--data-dir", default=d.data_dir, help="tfds data_dir")
    v.add_argument("--manual-dir", default=d.manual_dir, help="tfds manual_dir: where the imagenet2012 archives are")
    v.add_argument("--limit", type=int, default=d.limit, help="read only the first LIMIT images")
    v.add_argument("--models", nargs="+", default=["demo"],
                   help="demo, Keras application names (name:weights=none|PATH), .keras files, SavedModel dirs")
    names = eval_model_flags()
    add_model_flags(v, names, defaults={name: getattr(d, name) for name in names})
    v.add_argument("--methods", nargs="+", required=True, help="method specs, e.g. ig+idgi:steps=200")
    v.add_argument("--metrics", nargs="+", required=True, help="metric specs, e.g. insertion sic_aic_idgi")
    v.add_argument("--correct-only", action="store_true", help="keep only images the model classifies correctly")
    v.add_argument("--targets", default=d.targets, choices=TARGETS, help="class to explain")
    v.add_argument("--resize", default=d.resize, choices=RESIZE, help="fitting images to a model's input")
    v.add_argument("--images-per-batch", type=int, default=d.images_per_batch,
                   help="images attributed together (their records are written once the batch is scored)")
    v.add_argument("--aggregation", nargs="+", default=[], metavar="SCORE=mean|median",
                   help="report aggregation per score of the chosen metrics instead of the metric's own, "
                        "e.g. aic=mean or sic_aic_idgi/aic=mean")
    v.add_argument("--seed", type=int, default=d.seed,
                   help="random seed of the methods and metrics that draw noise, masks or baselines")
    v.add_argument("--runner", default=d.runner, choices=RUNNERS,
                   help="local: one process; beam: an Apache Beam pipeline (shards of --chunk-size images)")
    v.add_argument("--workers", type=int, default=d.workers, help="beam: worker processes of the DirectRunner")
    v.add_argument("--beam-option", action="append", default=[], metavar="KEY=VALUE",
                   help="beam: any PipelineOptions (repeatable; KEY alone for a switch), e.g. runner=DataflowRunner")
    v.add_argument("--chunk-size", type=int, default=d.chunk_size,
                   help="images read at a time; beam: the images of one shard (one work item)")
    v.add_argument("--devices", type=int, default=d.devices, metavar="N",
                   help="split each batch across N devices (tf.distribute.MirroredStrategy over N GPUs, or N "
                        "logical CPU devices on a machine without GPUs); same results as one device")
    v.add_argument("--jobs", type=int, default=d.jobs, metavar="N",
                   help="processes for the metrics' per-image CPU work (SIC/AIC, ROAD; default: every core this "
                        "process may use); same results for every N")
    v.add_argument("--out", required=True, help="output directory (results.jsonl, report.md, report.html, plots/)")
    v.add_argument("--report-only", action="store_true",
                   help="rebuild OUT/report.md and OUT/report.html from OUT/results.jsonl")
    v.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def aggregation_overrides(items) -> dict:
    """--aggregation SCORE=mean|median items -> {SCORE: how}."""
    aggregation = {}
    for item in items:
        score, eq, how = item.partition("=")
        if not eq or not score or how not in ("mean", "median"):
            raise ValueError(f"--aggregation takes SCORE=mean or SCORE=median, got {item!r}")
        aggregation[score] = how
    return aggregation


def run(args) -> int:
    from ..evaluation.config import EvaluationConfig
    from ..evaluation.report import write_report
    from ..evaluation.report_html import HTML_NAME
    from ..evaluation.runner import check_aggregation, check_writable, evaluate, stored_scores
    from ..evaluation.store import STORE_NAME

    aggregation = aggregation_overrides(args.aggregation)
    if args.report_only:
        store = os.path.join(args.out, STORE_NAME)
        if not os.path.isfile(store):
            raise ValueError(f"--out: no results store at {store}")
        check_aggregation(aggregation, stored_scores(store))
        report = write_report(store, check_writable(args.out, "--out"), aggregation=aggregation)
        print(f"{report}\n{os.path.join(os.path.dirname(report), HTML_NAME)}")
        return 0
    config = EvaluationConfig(correct_only=args.correct_only, targets=args.targets, limit=args.limit,
                              **model_flags(args, eval_model_flags()),
                              images_per_batch=args.images_per_batch, split=args.split, data_dir=args.data_dir,
                              manual_dir=args.manual_dir, resize=args.resize, seed=args.seed,
                              progress=not args.no_progress, aggregation=aggregation, runner=args.runner,
                              workers=args.workers, chunk_size=args.chunk_size,
                              beam_options=beam_options(args.beam_option) if args.beam_option else None,
                              devices=args.devices, jobs=args.jobs)
    if args.runner == "beam" and not args.verbose:
        import logging

        logging.getLogger("apache_beam").setLevel(logging.ERROR)  # the pipeline's INFO and option warnings
    done = evaluate(args.data, args.models, args.methods, args.metrics, args.out, config)
    print(f"{done.computed} new results ({done.already_done} already in the store) -> {done.store}")
    if done.skipped_files:
        print(f"{len(done.skipped_files)} unreadable image file(s) skipped (listed in the report)")
    if done.report:
        print(f"report: {done.report} and {os.path.join(os.path.dirname(done.report), HTML_NAME)}")
    if done.random_weights:
        print(f"WARNING: {', '.join(done.random_weights)} used RANDOM weights: the numbers are meaningless.")
    return 0


def beam_options(items) -> dict:
    """--beam-option KEY=VALUE items -> {KEY: VALUE}; a KEY alone is a switch (True)."""
    options = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not key:
            raise ValueError(f"--beam-option: expected KEY=VALUE, got {item!r}")
        options[key] = value if eq else True
    return options
