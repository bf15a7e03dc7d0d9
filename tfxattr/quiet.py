"""Quiet stderr for the ``tfxattr`` command: TensorFlow's C++ and absl log lines hidden unless ``--verbose``.

TensorFlow logs through absl, which ignores ``TF_CPP_MIN_LOG_LEVEL`` before ``absl::InitializeLog``
(TensorFlow never calls it), and it logs while being imported. So the command routes file descriptor
2 through a pipe that drops those lines (:class:`TensorflowLogFilter`), set up before TensorFlow is
imported: :func:`quiet_command_line` runs first thing in ``tfxattr/__init__.py`` and does nothing
unless the process is the ``tfxattr`` command (the console script, ``python -m tfxattr`` or
``python -m tfxattr.cli``).
This module imports only the standard library.
"""
from __future__ import annotations

import atexit
import os
import re
import sys
import threading
from typing import Optional, Sequence

#: TF_CPP_MIN_LOG_LEVEL without --verbose: 3 hides INFO, WARNING and ERROR lines of TensorFlow's own logger
#: (failures reach the user as tfxattr's one-line errors); a level set in the environment is kept
QUIET_TF_LOG_LEVEL = "3"
#: a log line of TensorFlow's C++ runtime: absl ("I0000 00:00:17.. port.cc:153] ..."), TF's own
#: ("2026-01-01 10:00:00.000: W tensorflow/..."), absl's pre-init notice, cpu_feature_guard's second line
TF_LOG_LINE = re.compile(rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |"
                         rb"WARNING: All log messages before absl::InitializeLog|"
                         rb"To enable the following instructions: )")
#: first bytes of the lines above: an unfinished line starting with one is held back until its end arrives
#: (progress bars redraw with a leading carriage return and are never held)
TF_LOG_FIRST_BYTES = b"IWEFT0123456789"
#: bytes read from the pipe at once
PIPE_READ = 65536
#: seconds to wait for the last bytes in the pipe when the filter stops
DRAIN_SECONDS = 5.0
#: names the console script may have (Windows adds -script.py / .exe)
COMMAND_NAMES = ("tfxattr", "tfxattr-script")
#: the modules `python -m` runs as the command
COMMAND_MODULES = ("tfxattr.cli", "tfxattr")
VERBOSE_FLAG = "--verbose"


class TensorflowLogFilter:
    """Route file descriptor 2 through a pipe and drop TensorFlow's log lines; everything else
    (Python warnings, progress bars, tracebacks, C++ output of other libraries) passes unchanged, in order."""

    def __init__(self):
        sys.stderr.flush()
        self._real = os.dup(2)
        self._read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self._thread = threading.Thread(target=self._pump, name="tfxattr-stderr", daemon=True)
        self._thread.start()

    def _pump(self):
        pending = b""
        while True:
            data = os.read(self._read, PIPE_READ)
            if not data:
                break
            *lines, pending = (pending + data).split(b"\n")
            out = b"".join(line + b"\n" for line in lines if not TF_LOG_LINE.match(line))
            if pending and pending[:1] not in TF_LOG_FIRST_BYTES:  # a partial line (a progress bar): show it now
                out, pending = out + pending, b""
            if out:
                os.write(self._real, out)
        if pending and not TF_LOG_LINE.match(pending):
            os.write(self._real, pending)
        os.close(self._read)

    def close(self):
        """Give file descriptor 2 back and pass on what is still in the pipe."""
        try:
            sys.stderr.flush()
        except (OSError, ValueError):  # pragma: no cover - stderr already closed
            pass
        os.dup2(self._real, 2)  # closes the pipe's write end: the pump reads to the end and stops
        self._thread.join(DRAIN_SECONDS)
        os.close(self._real)


_state = {"done": False, "filter": None}


def started_as_command() -> bool:
    """Whether this process is the ``tfxattr`` command (console script, ``python -m tfxattr`` or
    ``python -m tfxattr.cli``)."""
    script = os.path.splitext(os.path.basename(sys.argv[0] if sys.argv else ""))[0]
    if script in COMMAND_NAMES:
        return True
    orig = list(getattr(sys, "orig_argv", []))
    for i, arg in enumerate(orig):
        if arg == "-m":
            return i + 1 < len(orig) and orig[i + 1] in COMMAND_MODULES
        if arg.startswith("-m"):
            return arg[2:] in COMMAND_MODULES
    return False


def quiet_command_line(argv: Optional[Sequence[str]] = None):
    """Hide TensorFlow's log lines for the rest of the process unless ``--verbose`` is among the arguments.

    ``argv``: the command's arguments; None: act only if this process is the ``tfxattr`` command (read
    from ``sys.argv``), so ``import tfxattr`` in a program or notebook changes nothing. Runs once.
    """
    if _state["done"]:
        return
    if argv is None:
        if not started_as_command():
            return
        argv = list(getattr(sys, "orig_argv", None) or sys.argv)
    _state["done"] = True
    if VERBOSE_FLAG in argv:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_TF_LOG_LEVEL)
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        _state["filter"] = TensorflowLogFilter()
    except OSError:  # pragma: no cover - no pipes (a sandbox): the environment variable is all we can do
        return
    atexit.register(stop_filtering)


def stop_filtering():
    """Give stderr back (at the end of the command; safe to call more than once)."""
    log_filter, _state["filter"] = _state["filter"], None
    if log_filter is not None:
        log_filter.close()
