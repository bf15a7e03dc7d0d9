"""``tfxattr`` command line: ``explain``, ``methods``, ``models``."""
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
                   help="'demo' (shipped model), a Keras application name, a SavedModel dir or a .keras file")
    e.add_argument("--weights", default="imagenet", help="for Keras applications: 'imagenet' or a weights file path")
    e.add_argument("--method", default="ig", help="method name (see `tfxattr methods`)")
    e.add_argument("--target", type=int, default=None, help="class index (default: top-1 of each image)")
    e.add_argument("--steps", type=int, default=None, help="path steps (methods that take them)")
    e.add_argument("--baseline", default=None, help="black, white, blur or a number")
    e.add_argument("--output", default="logit", choices=["logit", "probability"])
    e.add_argument("--batch-size", type=int, default=32, help="memory bound: images through the model at once")
    e.add_argument("--out", default="explanation.png", help="output PNG (several images get _<i> suffixes)")
    e.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    sub.add_parser("methods", help="list the methods")
    sub.add_parser("models", help="list the model names --model accepts")
    return p


def _load_model(name, weights):
    if name == "demo":
        from .demo import DEMO_CLASS_NAMES, load_demo_model
        from .models import as_model

        adapter = as_model(load_demo_model())
        adapter.class_names = list(DEMO_CLASS_NAMES)
        return adapter
    return name


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "methods":
        from . import list_methods
        for name, summary in list_methods().items():
            print(f"{name:16s} {summary}")
        return 0
    if args.command == "models":
        import keras_apps
        print("demo             the shipped 64x64 shapes classifier (trained by scripts/train_demo_model.py)")
        for n in keras_apps.NAMES:
            s = keras_apps.get(n)
            print(f"{n:16s} {s.display_name} {s.input_size[0]}x{s.input_size[1]} (weights file {s.weights_file})")
        return 0
    from . import explain
    from .demo import demo_image_path

    images = args.images or [demo_image_path()]
    options = {}
    if args.steps is not None:
        options["steps"] = args.steps
    if args.baseline is not None:
        options["baseline"] = _number_or_name(args.baseline)
    try:
        model = _load_model(args.model, args.weights)
        exp = explain(model, [os.fspath(i) for i in images], method=args.method, target=args.target,
                      output=args.output, batch_size=args.batch_size, weights=_weights(args.weights),
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


def _weights(w):
    return None if w in ("none", "None") else w


def _number_or_name(v):
    try:
        return float(v)
    except ValueError:
        return v


if __name__ == "__main__":
    sys.exit(main())
