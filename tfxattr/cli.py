"""``tfxattr`` command line: ``explain``, ``eval``, ``methods``, ``models``."""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def _parser():
    p = argparse.ArgumentParser(prog="tfxattr", description="Attribution maps for Keras image classifiers.")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("explain", help="explain images and write PNG panels (image | heatmap | overlay)")
    e.add_argument("images", nargs="*", help="image files (default: the shipped demo image)")
    e.add_argument("--model", default="demo",
                   help="'demo' (shipped model), a Keras application name, a SavedModel dir or a .keras file "
                        "(`tfxattr models` lists the sources)")
    e.add_argument("--weights", default="imagenet",
                   help="for Keras applications: 'imagenet', 'none' (random) or a weights file path")
    e.add_argument("--method", default="ig", help="method name (see `tfxattr methods`)")
    e.add_argument("--target", type=int, default=None, help="class index (default: top-1 of each image)")
    e.add_argument("--steps", type=int, default=None, help="path steps (methods that take them)")
    e.add_argument("--baseline", default=None, help="black, white, blur or a number")
    e.add_argument("--output", default="logit", choices=["logit", "probability"])
    e.add_argument("--batch-size", type=int, default=32, help="memory bound: images through the model at once")
    e.add_argument("--out", default="explanation.png", help="output PNG (several images get _<i> suffixes)")
    e.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_eval_parser(sub)
    sub.add_parser("methods", help="list the methods")
    sub.add_parser("models", help="list the model names --model accepts")
    return p


def _add_eval_parser(sub):
    from .evaluation import RESIZE, TARGETS, EvaluationConfig

    d = EvaluationConfig()  # the flags' defaults are the config's
    v = sub.add_parser("eval", help="score methods with metrics on models over a data set (resumable)",
                       description="Score every method with every metric on every model. Results are appended "
                                   "to OUT/results.jsonl as images finish (a killed run resumes where it stopped); "
                                   "OUT/report.md and OUT/plots/ are rebuilt at the end.")
    v.add_argument("--data", required=True,
                   help="shapes:N (generated shapes with masks), an .npz (images, labels, masks), an image folder "
                        "(class subfolders or labels.csv), or a tfds name such as imagenet2012")
    v.add_argument("--split", default=d.split, help="tfds split (default: validation)")
    v.add_argument("--data-dir", default=d.data_dir, help="tfds data_dir")
    v.add_argument("--manual-dir", default=d.manual_dir, help="tfds manual_dir: where the imagenet2012 archives are")
    v.add_argument("--limit", type=int, default=d.limit, help="read only the first LIMIT images")
    v.add_argument("--models", nargs="+", default=["demo"],
                   help="demo, Keras application names (name:weights=none|PATH), .keras files, SavedModel dirs")
    v.add_argument("--weights", default=d.weights, help="Keras applications: imagenet, none (random!) or a path")
    v.add_argument("--methods", nargs="+", required=True, help="method specs, e.g. ig+idgi:steps=200")
    v.add_argument("--metrics", nargs="+", required=True, help="metric specs, e.g. insertion sic_aic_idgi")
    v.add_argument("--correct-only", action="store_true", help="keep only images the model classifies correctly")
    v.add_argument("--target", default=d.target, choices=TARGETS, help="class to explain")
    v.add_argument("--resize", default=d.resize, choices=RESIZE, help="fitting images to a model's input")
    v.add_argument("--batch-size", type=int, default=d.batch_size,
                   help="memory bound: images through the model at once")
    v.add_argument("--images-per-batch", type=int, default=d.images_per_batch,
                   help="images attributed together (their records are written once the batch is scored)")
    v.add_argument("--aggregation", nargs="+", default=[], metavar="SCORE=mean|median",
                   help="report aggregation per score instead of the metric's own, e.g. aic=mean")
    v.add_argument("--seed", type=int, default=d.seed)
    v.add_argument("--out", required=True, help="output directory (results.jsonl, report.md, plots/)")
    v.add_argument("--report-only", action="store_true", help="rebuild OUT/report.md from OUT/results.jsonl")
    v.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _eval(args) -> int:
    from .evaluation import STORE_NAME, EvaluationConfig, evaluate, write_report

    aggregation = {}
    for item in args.aggregation:
        score, eq, how = item.partition("=")
        if not eq or how not in ("mean", "median"):
            raise ValueError(f"--aggregation takes SCORE=mean or SCORE=median, got {item!r}")
        aggregation[score] = how
    if args.report_only:
        store = os.path.join(args.out, STORE_NAME)
        if not os.path.isfile(store):
            raise ValueError(f"no results store at {store}")
        print(write_report(store, args.out, aggregation=aggregation))
        return 0
    config = EvaluationConfig(correct_only=args.correct_only, target=args.target, limit=args.limit,
                              weights=args.weights, batch_size=args.batch_size,
                              images_per_batch=args.images_per_batch, split=args.split, data_dir=args.data_dir,
                              manual_dir=args.manual_dir, resize=args.resize, seed=args.seed,
                              progress=not args.no_progress, aggregation=aggregation)
    run = evaluate(args.data, args.models, args.methods, args.metrics, args.out, config)
    print(f"{run.computed} new results ({run.already_done} already in the store) -> {run.store}")
    print(f"report: {run.report}")
    if run.random_weights:
        print(f"WARNING: {', '.join(run.random_weights)} used RANDOM weights: the numbers are meaningless.")
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "methods":
        from . import list_methods
        for name, summary in list_methods().items():
            print(f"{name:16s} {summary}")
        return 0
    if args.command == "models":
        from .models.sources import describe
        for name, summary in describe():
            print(f"{name:16s} {summary}".rstrip())
        return 0
    if args.command == "eval":
        try:
            return _eval(args)
        except (FileNotFoundError, ValueError, TypeError) as err:
            print(f"tfxattr: {err}", file=sys.stderr)
            return 2
    from . import explain
    from .demo import demo_image_path

    images = args.images or [demo_image_path()]
    options = {}
    if args.steps is not None:
        options["steps"] = args.steps
    if args.baseline is not None:
        options["baseline"] = _number_or_name(args.baseline)
    try:
        exp = explain(args.model, [os.fspath(i) for i in images], method=args.method, target=args.target,
                      output=args.output, batch_size=args.batch_size, weights=args.weights,
                      progress=not args.no_progress, **options)
    except FileNotFoundError as err:  # includes keras_apps.WeightsUnavailableError
        print(f"tfxattr: {err}", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as err:
        print(f"tfxattr: {err}", file=sys.stderr)
        return 2
    written = exp.save(args.out)
    targets = np.atleast_1d(exp.targets)
    for i, (path, img) in enumerate(zip(written, images)):
        print(f"{img}: class {targets[i]} ({exp.label(i)}) -> {path}")
    return 0


def _number_or_name(v):
    try:
        return float(v)
    except ValueError:
        return v


if __name__ == "__main__":
    sys.exit(main())
