"""``tfxattr methods`` and ``tfxattr models``: what the other commands accept."""
from __future__ import annotations

#: width of the name column of both lists (the longest registered names fit)
NAME_WIDTH = 16


def add_parsers(sub, common):
    sub.add_parser("methods", help="list the methods", parents=[common])
    sub.add_parser("models", help="list the model names --model accepts", parents=[common])


def run_methods(args) -> int:
    from ..catalog import method_rows  # cached per version of the source: no TensorFlow import

    for name, summary, refused in method_rows():
        print(f"{name:{NAME_WIDTH}s} {summary}")
        if refused:
            print(f"{'':{NAME_WIDTH}s} (not exportable: {refused})")
    return 0


def run_models(args) -> int:
    from ..models.sources import describe

    for name, summary in describe():
        print(f"{name:{NAME_WIDTH}s} {summary}".rstrip())
    return 0
