"""Progress bars for long runs (tqdm), off unless asked for."""
from __future__ import annotations

import contextlib
import sys

import numpy as np

from .checks import one_of

#: "auto" shows a bar only for runs of more than this many chunks (short runs finish before one is read)
AUTO_MIN_CHUNKS = 20
PROGRESS_CHOICES = (True, False, "auto")


class _NoBar:
    def update(self, n=1):
        pass


def check_progress(value, name: str = "progress"):
    """``value`` if it is True, False or "auto"; else a ValueError naming ``name``."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        return one_of(value, name, PROGRESS_CHOICES)
    raise ValueError(f"{name} must be True, False or 'auto', got {value!r}")


@contextlib.contextmanager
def progress_bar(total: int, desc: str, enabled, unit: str = "chunk"):
    """``enabled``: True/False, or ``"auto"`` (on for runs of more than 20 chunks on a terminal)."""
    enabled = check_progress(enabled)
    if enabled == "auto":
        enabled = total > AUTO_MIN_CHUNKS and sys.stderr.isatty()
    if not enabled or total <= 0:
        yield _NoBar()
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, leave=False)
    try:
        yield bar
    finally:
        bar.close()
