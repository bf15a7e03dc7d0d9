"""The evaluation results store: JSON lines in ``results.jsonl`` and in part files, resumable, shardable.

A store is a directory: ``results.jsonl`` (the configuration, then records appended one line at a time by
the single-process runner) and ``parts/*.jsonl`` (one file per shard and method written whole by a Beam
worker, :func:`write_part`). Readers merge every file and keep the first record of each key
(:func:`iter_results`, :func:`load_results`), so a shard computed twice (a retried bundle) counts once.

Curves are stored at their breakpoints (:func:`pack_curve`): a metric that interpolates its measured
points on a fine grid (SIC/AIC: 25 thresholds on 1,001 points) stores only the grid points where the
curve bends, and the reader rebuilds the grid (:func:`curve_values`); a curve with few points (insertion's
21 steps) or no breakpoints to drop is stored whole, and an image the metric skipped stores ``null``.
Stores written before (whole curves, one file) are read as they are; metric options written under a name
the glossary retired (``insertion:base=blur``, ``blur_radius``, ``draws``: :data:`tfxattr.checks.RENAMED`)
are read under today's name (:func:`current_names`), so such a store reports and resumes as if written today.
"""
from __future__ import annotations

import functools
import json
import os
import uuid
from typing import Iterable, Iterator, List, Optional

import numpy as np

from ..checks import RENAMED
from ..specs import Spec, parse_spec

STORE_NAME = "results.jsonl"
#: the directory of part files next to ``results.jsonl``
PARTS_DIR = "parts"
PART_SUFFIX = ".jsonl"
#: curves with fewer points are stored whole: they are their measured steps already (insertion: 21)
PACK_MIN_POINTS = 64
#: slopes that differ by less than this are one straight piece (float noise of an interpolated grid)
SLOPE_TOLERANCE = 1e-8
#: a packed curve must rebuild every grid value to within the store's rounding (6 decimals), or it is stored whole
PACK_TOLERANCE = 5e-7
#: record kinds indexed by what they name (``ResultStore.named``); "skipped" (an unreadable image file:
#: ``image``, ``reason``) came later: stores without it are read as before, readers ignore unknown kinds
NAMED_KINDS = ("model", "metric", "skipped")


# JSON-lines rather than sqlite3: the runner is the only writer and only ever appends, so one line per
# record written with a single write() + flush + fsync is the whole transaction; a kill can only tear
# the last line, which is easy to detect (no newline / no valid JSON) and drop. Records are nested
# (scores, skip reasons and curves per metric), which sqlite would hold as JSON text anyway, and a
# .jsonl file can be read by anything (json, pandas.read_json(lines=True), grep).
def read_records(path) -> List[dict]:
    """Every complete record of the store at ``path`` (``results.jsonl`` or its directory): that file's, then
    its part files' (a torn last line is ignored; nothing is modified). :func:`iter_records` streams them."""
    return list(iter_records(path))


def store_path(path) -> str:
    """``<dir>/results.jsonl`` for a store directory, or the path of a store's ``.jsonl`` file itself."""
    path = os.fspath(path)
    return path if path.endswith(PART_SUFFIX) and not os.path.isdir(path) else os.path.join(path, STORE_NAME)


def part_files(path) -> List[str]:
    """The complete part files of the store at ``path``, sorted (unfinished temporary files are hidden)."""
    parts = os.path.join(os.path.dirname(os.path.abspath(store_path(path))), PARTS_DIR)
    if not os.path.isdir(parts):
        return []
    return [os.path.join(parts, f) for f in sorted(os.listdir(parts))
            if f.endswith(PART_SUFFIX) and not f.startswith(".")]


def iter_records(path) -> Iterator[dict]:
    """Stream the records of every file of the store at ``path``: ``results.jsonl``, then the part files."""
    main = store_path(path)
    for file in ([main] if os.path.exists(main) else []) + part_files(main):
        for record in _lines(file):
            yield current_names(record)


def _lines(path) -> Iterator[dict]:
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                return  # a torn, unfinished last record
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: line {number} is not valid JSON ({err}); the store is damaged") from None


def iter_results(path) -> Iterator[dict]:
    """The "result" records of a store as stored, each key once (the first record of a key wins)."""
    seen = set()
    for r in iter_records(path):
        if r.get("kind") == "result":
            key = result_key(r)
            if key not in seen:
                seen.add(key)
                yield r


def load_results(out_dir) -> Iterator[dict]:
    """The results of the evaluation store in ``out_dir`` (whatever runner wrote them, in any store format).

    Yields one dict per (model, method, image, target) with ``model``, ``method``, ``image``, ``target``,
    ``scores`` ({metric: {score: value or None}}), ``label``, ``predicted``, ``probability``, ``seconds``,
    ``skipped`` ({metric: {score: reason}}) and ``curves`` ({metric: {score: float64 array on the metric's
    x-axis}}, NaN where the image was skipped). Records are streamed: memory does not grow with the store.
    """
    path = store_path(out_dir)
    if not os.path.exists(path) and not part_files(path):
        raise ValueError(f"no results store in {os.fspath(out_dir)!r} (no {STORE_NAME} or {PARTS_DIR}/)")
    grids = {}
    for r in iter_records(path):
        if r.get("kind") == "metric":
            grids.setdefault(r["metric"], {k: np.asarray(c["x"], np.float64) for k, c in r.get("curves", {}).items()})
    for r in iter_results(path):
        curves = {m: {k: curve_values(y, grids.get(m, {}).get(k)) for k, y in c.items()}
                  for m, c in r.get("curves", {}).items()}
        yield {**r, "curves": curves}


#: where a record names metrics by label (``name:key=value,...``): kind -> its fields keyed by metric label
LABELLED_FIELDS = {"result": ("scores", "skipped", "curves", "points")}


def current_names(record: dict) -> dict:
    """``record`` with every metric option written under a retired name (:data:`tfxattr.checks.RENAMED`) renamed
    to today's, in metric labels and options: the run's configuration, a metric's description, a result's
    scores, skips, curves and points. A record without any is returned as it is."""
    kind = record.get("kind")
    if kind == "run" and isinstance(record.get("config", {}).get("metrics"), dict):
        metrics = {_current_label(label): _current_options(parse_spec(label, "metric").name, options)
                   for label, options in record["config"]["metrics"].items()}
        return {**record, "config": {**record["config"], "metrics": metrics}}
    if kind == "metric":
        name = record.get("name") or parse_spec(record["metric"], "metric").name
        return {**record, "metric": _current_label(record["metric"]),
                "options": _current_options(name, record.get("options") or {})}
    changed = {key: {_current_label(label): value for label, value in record[key].items()}
               for key in LABELLED_FIELDS.get(kind, ())
               if isinstance(record.get(key), dict) and any(_current_label(label) != label for label in record[key])}
    return {**record, **changed} if changed else record


@functools.lru_cache(maxsize=None)
def _current_label(label: str) -> str:
    """A metric label with its retired option names renamed (a label that is not a spec: as it is)."""
    if ":" not in label:
        return label
    try:
        spec = parse_spec(label, "metric")
    except ValueError:
        return label
    if not set(spec.options) & set(RENAMED):
        return label
    return Spec(spec.name, _current_options(spec.name, spec.options)).label


def _current_options(metric: str, options: dict) -> dict:
    """``options`` of the registered metric ``metric`` with retired names renamed (unregistered metrics: as given)."""
    if not set(options) & set(RENAMED):
        return options
    from ..metrics import METRICS  # only for an old store: reading one needs no TensorFlow otherwise

    if metric not in METRICS:
        return options
    valid = METRICS[metric].defaults
    return {RENAMED[k] if k not in valid and RENAMED.get(k) in valid else k: v for k, v in options.items()}


def write_part(path, name: str, records: Iterable[dict]) -> Optional[str]:
    """Write ``records`` as one part file of the store at ``path``, all or nothing: a temporary file, fsynced,
    then renamed (a kill leaves either the whole part or a hidden temporary file that readers ignore).
    The file is ``parts/<name>-<random>.jsonl``, so a shard written twice gives two parts (readers dedup).
    Returns the part's path (None when there are no records)."""
    data = b"".join(_line(r) for r in records)
    if not data:
        return None
    parts = os.path.join(os.path.dirname(os.path.abspath(store_path(path))), PARTS_DIR)
    os.makedirs(parts, exist_ok=True)
    final = os.path.join(parts, f"{name}-{uuid.uuid4().hex[:8]}{PART_SUFFIX}")
    tmp = os.path.join(parts, f".{os.path.basename(final)}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    return final


def remove_unfinished_parts(path):
    """Delete the temporary files that killed writers left in ``parts/`` (only when no writer runs)."""
    parts = os.path.join(os.path.dirname(os.path.abspath(store_path(path))), PARTS_DIR)
    for f in os.listdir(parts) if os.path.isdir(parts) else []:
        if f.startswith(".") and f.endswith(".tmp"):
            os.remove(os.path.join(parts, f))


def _line(record: dict) -> bytes:
    return json.dumps(record, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def _complete_length(path) -> int:
    """The length of ``path`` up to its last newline (what follows is a torn, unfinished record)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        tail, step = b"", 4096
        while len(tail) < size:
            f.seek(max(0, size - len(tail) - step))
            tail = f.read(min(step, size - len(tail))) + tail
            if b"\n" in tail:
                return size - len(tail) + tail.rfind(b"\n") + 1
    return 0


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
        end = _complete_length(self.path)
        if end != os.path.getsize(self.path):
            self._file.truncate(end)
        self.done, self.named, self._config = set(), set(), None
        for r in iter_records(self.path):  # streamed: only keys and names are kept
            kind = r.get("kind")
            if kind == "result":
                self.done.add(result_key(r))
            elif kind in NAMED_KINDS:
                self.named.add(_named(r))
            elif kind == "run" and self._config is None:
                self._config = r["config"]

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
        self._file.write(_line(record))
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


def pack_curve(x, y, digits: int = 6):
    """One image's curve ``y`` on the grid ``x`` as the store keeps it: None if it has no finite value (a
    skipped image); the whole rounded list if it is short (:data:`PACK_MIN_POINTS`) or bends everywhere;
    else ``{"at": [grid indices], "y": [values]}``, its breakpoints, from which linear interpolation on
    ``x`` rebuilds every grid value to within :data:`PACK_TOLERANCE` (checked)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if not np.any(np.isfinite(y)):
        return None
    if len(y) < PACK_MIN_POINTS or not np.all(np.isfinite(y)):
        return rounded(y, digits)
    slopes = np.diff(y) / np.diff(x)
    bends = np.flatnonzero(np.abs(np.diff(slopes)) > SLOPE_TOLERANCE * (1.0 + np.abs(slopes[1:]))) + 1
    at = np.concatenate([[0], bends, [len(y) - 1]])
    values = np.round(y[at], digits)
    if 2 * len(at) >= len(y) or np.max(np.abs(np.interp(x, x[at], values) - y)) > PACK_TOLERANCE:
        return rounded(y, digits)
    return {"at": at.tolist(), "y": values.tolist()}


def curve_values(stored, x=None) -> np.ndarray:
    """A stored curve as float64 values on its metric's grid ``x`` (NaN where missing): a whole list (any
    store format), a packed ``{"at", "y"}`` (:func:`pack_curve`, needs ``x``) or None (an image skipped)."""
    if isinstance(stored, dict):
        if x is None:
            raise ValueError("a packed curve needs its metric's x values to be rebuilt")
        x = np.asarray(x, np.float64)
        return np.interp(x, x[np.asarray(stored["at"], int)], np.asarray(stored["y"], np.float64))
    if stored is None:
        return np.full(0 if x is None else len(x), np.nan)
    return np.array([np.nan if v is None else v for v in stored], np.float64)
