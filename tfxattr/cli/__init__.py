"""``tfxattr`` command line: ``explain``, ``eval``, ``export``, ``methods``, ``models``.

One module per job: :mod:`.parser` (the parser, did-you-mean), :mod:`.model_flags` (the model flags every
command shares), :mod:`.explain`, :mod:`.evaluate`, :mod:`.export` and :mod:`.listing` (each command's flags
and run). Run as ``tfxattr``, ``python -m tfxattr`` or ``python -m tfxattr.cli``.

Every user error is one line ``tfxattr: ...`` on stderr and exit code 2 (no traceback); TensorFlow's
C++ and absl log lines are hidden unless ``--verbose`` is given. Command modules import TensorFlow only
when their command runs, so ``tfxattr --help`` answers without it.
"""
from __future__ import annotations

import sys

from ..quiet import quiet_command_line, stop_filtering
from . import evaluate, explain, export, listing
from .evaluate import beam_options as _beam_options  # noqa: F401 - the name tests/evaluation/test_beam.py imports
from .model_flags import read_class_names  # noqa: F401
from .parser import parse_args

#: exit code of a user error (argparse uses it for bad flags too)
EXIT_USER_ERROR = 2
#: exit code after Ctrl-C (128 + SIGINT), as shells report it
EXIT_INTERRUPTED = 130
#: what counts as a user error (bad arguments, files, data, models): one line, no traceback
USER_ERRORS = (ValueError, TypeError, OSError, FloatingPointError)
#: each command -> the function that runs it
RUNS = {"explain": explain.run, "eval": evaluate.run, "export": export.run, "methods": listing.run_methods,
        "models": listing.run_models}
COMMANDS = tuple(RUNS)


def main(argv=None) -> int:
    """The command line. Run as the process (``argv`` None), TensorFlow's log lines are hidden unless
    ``--verbose`` is given (:mod:`tfxattr.quiet`); called with ``argv`` (tests) stderr is left alone."""
    if argv is None:  # a no-op when ``import tfxattr`` already did it, before TensorFlow was imported
        quiet_command_line(sys.argv[1:])
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse_args(argv)
        return RUNS[args.command](args)
    except USER_ERRORS as err:  # includes FileNotFoundError, keras_apps.WeightsUnavailableError
        message = " ".join(str(err).split("\n")) or type(err).__name__
        print(f"tfxattr: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("tfxattr: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        stop_filtering()
