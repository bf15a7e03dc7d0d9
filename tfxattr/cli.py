"""``tfxattr`` command line: ``explain``, ``eval``, ``methods``, ``models``.

Every user error is one line ``tfxattr: ...`` on stderr and exit code 2 (no traceback); TensorFlow's
C++ and absl log lines are hidden unless ``--verbose`` is given.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile

from .checks import did_you_mean
from .quiet import quiet_command_line, stop_filtering

#: exit code of a user error (argparse uses it for bad flags too)
EXIT_USER_ERROR = 2
#: exit code after Ctrl-C (128 + SIGINT), as shells report it
EXIT_INTERRUPTED = 130
#: what counts as a user error (bad arguments, files, data, models): one line, no traceback
USER_ERRORS = (ValueError, TypeError, OSError, FloatingPointError)
#: the subcommands; eval's options are built only when eval is the command (its defaults need TensorFlow)
COMMANDS = ("explain", "eval", "export", "methods", "models")
EVAL_HELP = "score methods with metrics on models over a data set (resumable)"


class Parser(argparse.ArgumentParser):
    """argparse with defaults in ``--help`` and did-you-mean for an unknown subcommand or choice."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        wrong = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if wrong:
            message += did_you_mean(wrong.group(1), re.findall(r"'([^']*)'", wrong.group(2)))
        super().error(message)


def parse_args(argv):
    """The command's arguments; an unknown option is refused by the subcommand's parser with the closest
    of its options (argparse's own message names none)."""
    parser = _parser(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command in parser.commands:  # before argparse, whose "required" error would hide a misspelt option
        _refuse_unknown(parser.commands[command], argv[argv.index(command) + 1:])
    args, extras = parser.parse_known_args(argv)
    _refuse_unknown(parser.commands[args.command], extras)
    return args


def _refuse_unknown(sub, tokens):
    """Refuse the options among ``tokens`` that ``sub`` does not know (nor abbreviates), with the closest."""
    options = list(sub._option_string_actions)  # argparse keeps no public list of a parser's options
    tokens = tokens[:tokens.index("--")] if "--" in tokens else tokens
    unknown = [t for t in tokens if t.startswith("-") and not _is_number(t)
               and not any(o.startswith(t.split("=")[0]) for o in options)]
    if unknown:
        hints = "".join(did_you_mean(t.split("=")[0], options) for t in unknown)
        sub.error(f"unrecognized arguments: {' '.join(unknown)}{hints}")


def _is_number(text) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parser(argv=()):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", help="show TensorFlow's log lines")
    p = Parser(prog="tfxattr", description="Attribution maps for Keras image classifiers.", parents=[common])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("explain", help="explain images and write PNG panels (image | heatmap | overlay)",
                       parents=[common])
    e.add_argument("images", nargs="*", help="image files (default: the shipped demo image)")
    e.add_argument("--model", default="demo",
                   help="'demo' (shipped model), a Keras application name, a SavedModel dir or a .keras file "
                        "(`tfxattr models` lists the sources)")
    e.add_argument("--weights", default="imagenet",
                   help="for Keras applications: 'imagenet', 'none' (random) or a weights file path")
    _add_model_options(e, "images")
    e.add_argument("--method", default="ig",
                   help="method spec as in `tfxattr eval`: a name (see `tfxattr methods`) with options, "
                        "e.g. ig:steps=20 or ig+idgi:steps=64,baseline=blur")
    e.add_argument("--target", default=None,
                   help="class index or class name (e.g. 3 or triangle), one for every image, or one per image "
                        "separated by commas (default: top-1 of each image)")
    e.add_argument("--steps", type=int, default=None, help="path steps (methods that take them)")
    e.add_argument("--baseline", default=None, help="black, white, blur or a number")
    e.add_argument("--smooth", type=int, default=None, metavar="SAMPLES",
                   help="SmoothGrad over the method with SAMPLES noisy copies of each image")
    e.add_argument("--seed", type=int, default=None, help="random seed (noise of --smooth, random baselines)")
    e.add_argument("--output", default="logit", choices=["logit", "probability"])
    e.add_argument("--batch-size", type=int, default=32, help="memory bound: images through the model at once")
    e.add_argument("--precision", default="float32",
                   help="float32, bfloat16 or float16: the model's forward and backward passes (Keras models)")
    e.add_argument("--background", default="white", choices=["white", "black"],
                   help="what transparent pixels of the images are composited over")
    e.add_argument("--out", default="explanation.png",
                   help="output figure, .png or .jpg (several images get _<i> suffixes), or a directory: one "
                        "<image name>_<method>.png per image inside it")
    e.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    command = next((a for a in argv if not a.startswith("-")), None)
    if command == "eval":
        _add_eval_parser(sub, common)
    else:  # `tfxattr --help` lists it; its options (and their defaults) are built when it is the command
        sub.add_parser("eval", help=EVAL_HELP, parents=[common])
    _add_export_parser(sub, common)
    sub.add_parser("methods", help="list the methods", parents=[common])
    sub.add_parser("models", help="list the model names --model accepts", parents=[common])
    p.commands = sub.choices
    return p


def _add_model_options(parser, what):
    """--pixel-range, --input-range and --class-names: the same model options in every command."""
    parser.add_argument("--pixel-range", nargs=2, type=float, default=None, metavar=("LOW", "HIGH"),
                        help=f"how the {what}' pixels are scaled, e.g. 0 1 or -1 1 (default: the model's input range; "
                             "for a model whose range is unknown, the scale the values lie in)")
    parser.add_argument("--input-range", nargs=2, type=float, default=None, metavar=("LOW", "HIGH"),
                        help="the range the model reads, when the model does not declare it (Keras applications, "
                             "'demo' and models starting with a Rescaling or Normalization layer do). Both ranges "
                             f"known: the {what} are mapped linearly onto the model's; the model's unknown: they "
                             "reach it unchanged")
    parser.add_argument("--class-names", default=None, metavar="FILE_OR_LIST",
                        help="the model's class names, one per output in order: a text file with one name per line, "
                             "or a comma-separated list (e.g. cat,dog,bird); targets can then be given by name")


def _model_options(args) -> dict:
    """The model keywords of explain, eval and export from the --pixel-range/--input-range/--class-names flags."""
    return {"pixel_range": None if args.pixel_range is None else tuple(args.pixel_range),
            "input_range": None if args.input_range is None else tuple(args.input_range),
            "class_names": read_class_names(args.class_names)}


def read_class_names(text):
    """--class-names: None, a file (one name per line; blank lines are skipped) or a comma-separated list."""
    if text is None:
        return None
    if os.path.isfile(text):
        with open(text, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
        if not names:
            raise ValueError(f"--class-names: the file {text!r} holds no names")
        return names
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise ValueError(f"--class-names: an empty name in {text!r} (give a file with one name per line, or a "
                         "comma-separated list)")
    return names


def _add_export_parser(sub, common):
    x = sub.add_parser("export", help="write a SavedModel serving scores and explanations (runs without tfxattr)",
                       parents=[common],
                       description="Write a SavedModel with serving_default (scores) and one explain_<method> "
                                   "signature per method ('+' written '_', '++' written '_plus_plus'); loading it "
                                   "needs TensorFlow only (TF Serving, saved_model_cli, tf.saved_model.load).")
    x.add_argument("model", help="'demo', a Keras application name, a SavedModel dir or a .keras file")
    x.add_argument("path", help="output directory of the SavedModel (e.g. explainer/1 for TF Serving)")
    x.add_argument("--methods", nargs="+", default=["ig+idgi"],
                   help="method specs, e.g. ig+idgi gradcam smooth:method=ig,samples=10")
    x.add_argument("--steps", type=int, default=None, help="path steps of every method that takes them")
    x.add_argument("--batch-size", type=int, default=32, help="memory bound: rows through the model at once")
    x.add_argument("--output", default="logit", choices=["logit", "probability"])
    x.add_argument("--weights", default="imagenet",
                   help="for Keras applications: 'imagenet', 'none' (random) or a weights file path")
    x.add_argument("--seed", type=int, default=0, help="seed of SmoothGrad's noise (fixed in the graph)")
    _add_model_options(x, "images")


def _export(args) -> int:
    from .serving import export, signature_name
    from .serving.export import resolve_methods

    names = resolve_methods(args.methods, args.steps)  # bad specs fail before the model is loaded
    path = export(args.model, args.path, methods=args.methods, steps=args.steps, batch_size=args.batch_size,
                  output=args.output, seed=args.seed, weights=args.weights, **_model_options(args))
    print(f"{path}: serving_default, {', '.join(signature_name(k) for k in names)}")
    return 0


def _add_eval_parser(sub, common):
    from .evaluation.config import RUNNERS, TARGETS, EvaluationConfig
    from .evaluation.datasets import RESIZE

    d = EvaluationConfig()  # the flags' defaults are the config's
    v = sub.add_parser("eval", help=EVAL_HELP, parents=[common],
                       description="Score every method with every metric on every model. Results are appended "
                                   "to OUT/results.jsonl as images finish (a killed run resumes where it stopped); "
                                   "OUT/report.md and OUT/plots/ are rebuilt at the end. Image files that cannot "
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
    v.add_argument("--weights", default=d.weights, help="Keras applications: imagenet, none (random!) or a path")
    _add_model_options(v, "data")
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
    v.add_argument("--out", required=True, help="output directory (results.jsonl, report.md, plots/)")
    v.add_argument("--report-only", action="store_true", help="rebuild OUT/report.md from OUT/results.jsonl")
    v.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _aggregation(items) -> dict:
    aggregation = {}
    for item in items:
        score, eq, how = item.partition("=")
        if not eq or not score or how not in ("mean", "median"):
            raise ValueError(f"--aggregation takes SCORE=mean or SCORE=median, got {item!r}")
        aggregation[score] = how
    return aggregation


def _eval(args) -> int:
    from .evaluation.config import EvaluationConfig
    from .evaluation.report import write_report
    from .evaluation.runner import check_aggregation, check_writable, evaluate, stored_scores
    from .evaluation.store import STORE_NAME

    aggregation = _aggregation(args.aggregation)
    if args.report_only:
        store = os.path.join(args.out, STORE_NAME)
        if not os.path.isfile(store):
            raise ValueError(f"--out: no results store at {store}")
        check_aggregation(aggregation, stored_scores(store))
        print(write_report(store, check_writable(args.out, "--out"), aggregation=aggregation))
        return 0
    config = EvaluationConfig(correct_only=args.correct_only, target=args.target, limit=args.limit,
                              **_model_options(args), weights=args.weights, batch_size=args.batch_size,
                              images_per_batch=args.images_per_batch, split=args.split, data_dir=args.data_dir,
                              manual_dir=args.manual_dir, resize=args.resize, seed=args.seed,
                              progress=not args.no_progress, aggregation=aggregation, runner=args.runner,
                              workers=args.workers, chunk_size=args.chunk_size,
                              beam_options=_beam_options(args.beam_option) if args.beam_option else None,
                              devices=args.devices, jobs=args.jobs)
    if args.runner == "beam" and not args.verbose:
        import logging

        logging.getLogger("apache_beam").setLevel(logging.ERROR)  # the pipeline's INFO and option warnings
    run = evaluate(args.data, args.models, args.methods, args.metrics, args.out, config)
    print(f"{run.computed} new results ({run.already_done} already in the store) -> {run.store}")
    if run.skipped_files:
        print(f"{len(run.skipped_files)} unreadable image file(s) skipped (listed in the report)")
    print(f"report: {run.report}")
    if run.random_weights:
        print(f"WARNING: {', '.join(run.random_weights)} used RANDOM weights: the numbers are meaningless.")
    return 0


def _beam_options(items) -> dict:
    """--beam-option KEY=VALUE items -> {KEY: VALUE}; a KEY alone is a switch (True)."""
    options = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not key:
            raise ValueError(f"--beam-option: expected KEY=VALUE, got {item!r}")
        options[key] = value if eq else True
    return options


def _explain(args) -> int:
    import numpy as np

    from .demo import demo_image_path
    from .evaluation.specs import parse_spec
    from .explain import explain

    images = [os.fspath(i) for i in args.images] or [demo_image_path()]
    spec = parse_spec(args.method, "--method")
    outs = _out_paths(args.out, images, spec.name)
    options = dict(spec.options)
    for flag, key, value in (("--steps", "steps", args.steps),
                             ("--baseline", "baseline", None if args.baseline is None
                              else _number_or_name(args.baseline))):
        if value is None:
            continue
        if key in options and options[key] != value:
            raise ValueError(f"{flag} {value!r} disagrees with {key}={options[key]!r} in --method {args.method!r}; "
                             "give it once")
        options[key] = value
    exp = explain(args.model, images, method=spec.name, target=_target(args.target), output=args.output,
                  batch_size=args.batch_size, weights=args.weights, smooth=args.smooth, seed=args.seed,
                  progress=not args.no_progress, precision=args.precision, background=args.background,
                  **_model_options(args), **options)
    written = exp.save(args.out) if outs is None else [exp.save(out, index=i)[0] for i, out in enumerate(outs)]
    targets = np.atleast_1d(exp.targets)
    for i, (path, img) in enumerate(zip(written, images)):
        print(f"{img}: class {targets[i]} ({exp.label(i)}) -> {path}")
    return 0


def _target(text):
    """--target: None, an index, a class name, or several of them separated by commas (one per image)."""
    if text is None:
        return None
    items = [t.strip() for t in text.split(",")]
    if not all(items):
        raise ValueError(f"--target: empty class in {text!r}")
    values = [int(t) if t.lstrip("-").isdigit() else t for t in items]
    return values[0] if len(values) == 1 else values


def _out_paths(out, images, method):
    """--out a directory: one ``<image stem>_<method>.png`` per image inside it (``_<i>`` added where stems
    repeat); --out a file: None (Explanation.save numbers several images), after checking it can be written."""
    from .visualize import figure_format

    if not os.path.isdir(out):
        figure_format(out, "--out")
        _check_out_file(out)
        return None
    _check_out_file(os.path.join(out, "x.png"))
    stems = [os.path.splitext(os.path.basename(i))[0] for i in images]
    paths = [os.path.join(out, f"{stem}{'' if stems.count(stem) == 1 else f'_{i}'}_{method}.png")
             for i, stem in enumerate(stems)]
    clash = sorted({p for p in paths if os.path.abspath(p) in {os.path.abspath(i) for i in images}})
    if clash:
        raise ValueError(f"--out: writing into {out!r} would overwrite the input image(s) {clash}; give a file name")
    return paths


def _check_out_file(path):
    """The directory of output file ``path`` exists and is writable (checked before anything is computed)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"--out: directory {folder!r} does not exist")
    try:  # os.access ignores read-only mounts and root's rights; creating a file does not
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ValueError(f"--out: cannot write to {folder!r} ({err.strerror or err})") from None


def _number_or_name(v):
    try:
        return float(v)
    except ValueError:
        return v


def _run(args) -> int:
    if args.command == "methods":
        from .catalog import method_rows  # cached per version of the source: no TensorFlow import

        for name, summary, refused in method_rows():
            print(f"{name:16s} {summary}")
            if refused:
                print(f"{'':16s} (not exportable: {refused})")
        return 0
    if args.command == "models":
        from .models.sources import describe
        for name, summary in describe():
            print(f"{name:16s} {summary}".rstrip())
        return 0
    if args.command == "eval":
        return _eval(args)
    if args.command == "export":
        return _export(args)
    return _explain(args)


def main(argv=None) -> int:
    """The command line. Run as the process (``argv`` None), TensorFlow's log lines are hidden unless
    ``--verbose`` is given (:mod:`tfxattr.quiet`); called with ``argv`` (tests) stderr is left alone."""
    if argv is None:  # a no-op when ``import tfxattr`` already did it, before TensorFlow was imported
        quiet_command_line(sys.argv[1:])
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return _run(parse_args(argv))
    except USER_ERRORS as err:  # includes FileNotFoundError, keras_apps.WeightsUnavailableError
        message = " ".join(str(err).split("\n")) or type(err).__name__
        print(f"tfxattr: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("tfxattr: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        stop_filtering()


if __name__ == "__main__":
    sys.exit(main())
