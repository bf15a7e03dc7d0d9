"""What the eval/ scripts share: their command line, the loud warnings, mock data, running and tables.

Every script takes ``--data`` (tfds name / image folder / .npz / shapes:N), ``--models``, ``--limit`` and
``--out`` and defaults to its paper's settings. ``--weights none`` builds Keras applications with random
weights and ``--mock-data N`` replaces the tfds data set by N random examples
(``tfds.testing.mock_data``): both only check that the pipeline runs, and say so loudly.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys

import numpy as np

RANDOM_BANNER = ("=" * 100 + "\n!! RANDOM WEIGHTS (--weights none): every number below is MEANINGLESS; this run only "
                 "checks that the pipeline works. !!\n" + "=" * 100)
MOCK_BANNER = ("=" * 100 + "\n!! MOCK DATA (--mock-data): random images with random labels from "
               "tfds.testing.mock_data; the numbers are MEANINGLESS. !!\n" + "=" * 100)


def parser(description: str, models, out: str, data: str = "imagenet2012", steps=200,
           steps_help: str = "path steps of the IG-family methods") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default=data, help="tfds name (e.g. imagenet2012), image folder, .npz, or shapes:N")
    p.add_argument("--split", default="validation", help="tfds split")
    p.add_argument("--data-dir", default=None, help="tfds data_dir")
    p.add_argument("--manual-dir", default=None,
                   help="tfds manual_dir holding ILSVRC2012_img_val.tar / ILSVRC2012_img_train.tar")
    p.add_argument("--mock-data", type=int, default=None, metavar="N",
                   help="use N fake examples from tfds.testing.mock_data instead of real data (a pipeline check)")
    p.add_argument("--models", nargs="+", default=list(models), help="demo, Keras application names, .keras files")
    p.add_argument("--weights", default="imagenet", help="Keras applications: imagenet, none (random!) or a path")
    p.add_argument("--limit", type=int, default=None, help="read only the first LIMIT images")
    p.add_argument("--out", default=out, help="output directory (results store, report, tables)")
    p.add_argument("--steps", type=int, default=steps, help=steps_help)
    p.add_argument("--batch-size", type=int, default=32, help="images through the model at once (memory bound)")
    p.add_argument("--images-per-batch", type=int, default=16, help="images attributed together")
    p.add_argument("--metric-options", nargs="+", default=[], metavar="NAME:KEY=VALUE,...",
                   help="change a metric's options, e.g. sic_aic_idgi:thresholds=(0.25,0.5,1.0) (quick checks)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return p


def metric_specs(args, names) -> dict:
    """metric name -> spec label, with ``--metric-options`` merged in (unknown names are an error)."""
    from tfxattr.evaluation import Spec, parse_spec

    extra = {}
    for text in args.metric_options:
        spec = parse_spec(text, "--metric-options")
        if spec.name not in names:
            raise ValueError(f"--metric-options: {spec.name!r} is not one of this script's metrics {list(names)}")
        extra.setdefault(spec.name, {}).update(spec.options)
    return {name: Spec(name, extra.get(name, {})).label for name in names}


def random_weights(args) -> bool:
    from tfxattr.models.sources import parse_weights

    return parse_weights(args.weights) is None and any(m != "demo" for m in args.models)


def announce(args):
    """Print the loud banners that random weights or mock data call for."""
    if random_weights(args):
        print(RANDOM_BANNER, flush=True)
    if args.mock_data:
        print(MOCK_BANNER, flush=True)


@contextlib.contextmanager
def data_context(args):
    """``tfds.testing.mock_data(num_examples=N)`` around the run when ``--mock-data N`` is given."""
    if not args.mock_data:
        yield
        return
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=args.mock_data):
        yield


def load_source(args):
    from tfxattr.evaluation import load_data

    return load_data(args.data, args.limit, args.split, args.data_dir, args.manual_dir)


def keep_correct_only(args, wanted: bool) -> bool:
    """The paper's "correctly classified images only", except with random weights (nothing would be kept)."""
    if wanted and random_weights(args):
        print("note: random weights classify (almost) nothing correctly, so every image is kept "
              "(the paper keeps only correctly classified ones)", flush=True)
        return False
    return wanted


def run(args, source, methods, metrics, out, *, correct_only, targets="label", aggregation=None):
    """``tfxattr.evaluation.evaluate`` with the script's arguments; returns (RunSummary, score summaries)."""
    from tfxattr.evaluation import evaluate
    from tfxattr.evaluation.summary import load_store, summarize

    summary = evaluate(source, args.models, methods, metrics, out, correct_only=correct_only, targets=targets,
                       weights=args.weights, batch_size=args.batch_size, images_per_batch=args.images_per_batch,
                       progress=not args.no_progress, aggregation=aggregation, log=print)
    return summary, summarize(load_store(summary.store), aggregation)


def with_steps(method: str, steps) -> str:
    """``"ig+idgi"`` -> ``"ig+idgi:steps=200"`` when the method has a ``steps`` option."""
    from tfxattr.methods import METHODS

    name = method.partition(":")[0]
    if steps is None or name not in METHODS or "steps" not in METHODS[name].defaults:
        return method
    return method + ("," if ":" in method else ":") + f"steps={steps}"


def write_tables(args, out: str, filename: str, title: str, sections, notes: str = "") -> str:
    """Write ``<out>/<filename>`` (Markdown: title, warnings, notes, then each (heading, table)); print it."""
    lines = [f"# {title}", ""]
    if random_weights(args):
        lines += ["> **RANDOM WEIGHTS: these numbers are meaningless (pipeline check only).**", ""]
    if args.mock_data:
        lines += ["> **MOCK DATA (tfds.testing.mock_data): these numbers are meaningless.**", ""]
    if notes:
        lines += [notes, ""]
    for heading, table in sections:
        lines += [f"## {heading}", "", table, ""]
    text = "\n".join(lines)
    path = os.path.join(out, filename)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    print(f"tables: {path}")
    return path


def main_guard(fn):
    """Run ``fn()``; print a one-line error (exit code 2) for bad arguments or missing data/weights."""
    try:
        return fn() or 0
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def stable_seed(*parts) -> int:
    """A 32-bit seed from strings/arrays (for per-image randomness that does not depend on batching)."""
    import zlib

    crc = 0
    for p in parts:
        crc = zlib.crc32(np.ascontiguousarray(p).tobytes() if isinstance(p, np.ndarray) else str(p).encode(), crc)
    return crc
