"""Progress bars for long runs (tqdm), off unless asked for."""
from __future__ import annotations

import contextlib
import sys


class _NoBar:
    def update(self, n=1):
        pass


@contextlib.contextmanager
def progress_bar(total: int, desc: str, enabled):
    """``enabled``: True/False, or ``"auto"`` (on for runs of more than 20 chunks on a terminal)."""
    if enabled == "auto":
        enabled = total > 20 and sys.stderr.isatty()
    if not enabled or total <= 0:
        yield _NoBar()
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="chunk", leave=False)
    try:
        yield bar
    finally:
        bar.close()
