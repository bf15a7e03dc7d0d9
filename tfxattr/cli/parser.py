"""The command line's parser: one subparser per command (each command module adds its own), defaults in
``--help``, and did-you-mean for an unknown subcommand, choice or option."""
from __future__ import annotations

import argparse
import re

from ..checks import did_you_mean
from . import evaluate, explain, export, listing


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
    parser = build_parser(argv)
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


def build_parser(argv=()):
    """The parser of every command; eval's options are built only when eval is the command (its defaults
    need TensorFlow), so ``tfxattr --help`` answers without importing it."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", help="show TensorFlow's log lines")
    p = Parser(prog="tfxattr", description="Attribution maps for Keras image classifiers.", parents=[common])
    sub = p.add_subparsers(dest="command", required=True)
    explain.add_parser(sub, common)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command == "eval":
        evaluate.add_parser(sub, common)
    else:  # `tfxattr --help` lists it; its options (and their defaults) are built when it is the command
        sub.add_parser("eval", help=evaluate.HELP, parents=[common])
    export.add_parser(sub, common)
    listing.add_parsers(sub, common)
    p.commands = sub.choices
    return p
