"""The model flags every command shares (explain, eval, export): declared and read in one place."""
from __future__ import annotations

import os


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
