"""The evaluation results store: one JSON line per record, appended and fsynced, resumable."""
from __future__ import annotations

import json
import os
from typing import List, Optional

import numpy as np

STORE_NAME = "results.jsonl"
#: record kinds indexed by what they name (``ResultStore.named``); "skipped" (an unreadable image file:
#: ``image``, ``reason``) came later: stores without it are read as before, readers ignore unknown kinds
NAMED_KINDS = ("model", "metric", "skipped")


# JSON-lines rather than sqlite3: the runner is the only writer and only ever appends, so one line per
# record written with a single write() + flush + fsync is the whole transaction; a kill can only tear
# the last line, which is easy to detect (no newline / no valid JSON) and drop. Records are nested
# (scores, skip reasons and curves per metric), which sqlite would hold as JSON text anyway, and a
# .jsonl file can be read by anything (json, pandas.read_json(lines=True), grep).
def read_records(path) -> List[dict]:
    """Every complete record of a store (a torn last line is ignored; the file is not modified)."""
    records, _ = _read(path)
    return records


def _read(path):
    with open(path, "rb") as f:
        raw = f.read()
    end = raw.rfind(b"\n") + 1  # bytes after the last newline are a torn, unfinished record
    records = []
    for number, line in enumerate(raw[:end].splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: line {number} is not valid JSON ({err}); the store is damaged") from None
    return records, end


def _named(record) -> tuple:
    """(kind, what it names): a model's pass, a metric's description, or an unreadable image file."""
    return record["kind"], record.get("model") or record.get("metric") or record.get("image")


def result_key(record) -> tuple:
    return record["model"], record["method"], record["image"], int(record["target"])


class ResultStore:
    """Append-only JSON-lines store of records keyed by (model, method, image, target).

    Record kinds: "run" (the configuration), "metric", "result", "model" (a finished pass) and
    "skipped" (an image file that could not be read, with the reason).

    Opening it drops a torn last line, takes an exclusive lock (one writer per store) and indexes
    the keys already done; :meth:`append` writes one complete line per record, flushed and fsynced.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)) or ".", exist_ok=True)
        self._file = open(self.path, "a+b")
        self._lock()
        records, end = _read(self.path)
        if end != os.path.getsize(self.path):
            self._file.truncate(end)
        self.done = {result_key(r) for r in records if r.get("kind") == "result"}
        self.named = {_named(r) for r in records if r.get("kind") in NAMED_KINDS}
        self._config = next((r["config"] for r in records if r.get("kind") == "run"), None)

    def _lock(self):
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise ValueError(f"results store {self.path} is in use by another run") from None

    def config(self) -> Optional[dict]:
        """The configuration of the run that created the store (None for a new store)."""
        return self._config

    def append(self, record: dict):
        """Write ``record`` as one line, flushed and fsynced (a kill leaves it whole or torn, never half-read)."""
        line = json.dumps(record, separators=(",", ":"), allow_nan=False).encode() + b"\n"
        self._file.write(line)
        self._file.flush()
        os.fsync(self._file.fileno())
        if record.get("kind") == "run":
            self._config = self._config or record["config"]
        elif record.get("kind") == "result":
            self.done.add(result_key(record))
        elif record.get("kind") in NAMED_KINDS:
            self.named.add(_named(record))

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def json_safe(value):
    """JSON-safe: NaN/inf -> None, NumPy -> Python, recursively."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def rounded(values, digits=6):
    return [None if not np.isfinite(v) else round(float(v), digits) for v in np.asarray(values, np.float64)]
