"""The evaluation runner: methods x metrics x models over a data set, resumable (``tfxattr eval``).

>>> evaluate("shapes:40", ["demo"], ["gradient", "ig+idgi:steps=200"], ["insertion", "localization"],
...          out="runs/demo", correct_only=True)

For every model the images are fitted to its input size; for every method the attributions of a batch
of images are computed once and fed to every metric; one record per (model, method, image, target)
is appended to ``<out>/results.jsonl`` as soon as its batch is scored. A run that is killed resumes
where it stopped: keys already in the store are skipped, a torn last line is dropped, nothing is
counted twice. ``<out>/report.md`` (tables and PNG curves, :mod:`tfxattr.report`) is rebuilt from
the store at the end.

Sections: specs ("name:key=value,..."), data sources, the results store, models, the runner.
"""
from __future__ import annotations

import ast
import csv
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np

STORE_NAME = "results.jsonl"
TARGETS = ("label", "predicted")
RESIZE = ("crop", "stretch")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
RANDOM_WEIGHTS_WARNING = ("WARNING: {models} run(s) with RANDOM weights (--weights none): the numbers are "
                          "meaningless for judging attribution methods; they only show that the pipeline runs.")


# -- specs: "name:key=value,key=value" ---------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """A name plus options, e.g. ``Spec("ig+idgi", {"steps": 200})``; ``label`` is its canonical text."""
    name: str
    options: dict = field(default_factory=dict, hash=False)

    @property
    def label(self) -> str:
        if not self.options:
            return self.name
        return self.name + ":" + ",".join(f"{k}={_format_value(v)}" for k, v in sorted(self.options.items()))


def parse_spec(text, what: str = "spec") -> Spec:
    """``"ig+idgi:steps=200,baseline=black"`` -> ``Spec("ig+idgi", {"steps": 200, "baseline": "black"})``.

    Values are Python literals (ints, floats, tuples, True/False/None; "none"/"true"/"false" too),
    anything else is a string. Also accepts a ``Spec`` or a ``(name, options dict)`` pair.
    """
    if isinstance(text, Spec):
        return text
    if isinstance(text, tuple) and len(text) == 2 and isinstance(text[0], str) and isinstance(text[1], dict):
        return Spec(text[0].strip(), dict(text[1]))
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{what} must be a non-empty string like 'name:key=value,...', got {text!r}")
    name, _, rest = text.strip().partition(":")
    options = {}
    for item in _split_top_level(rest):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"{what} {text!r}: option {item!r} is not key=value")
        options[key.strip()] = _parse_value(value.strip())
    return Spec(name.strip(), options)


def _split_top_level(text: str) -> List[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _parse_value(text: str):
    lowered = text.lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    if len(text) >= 2 and text[0] + text[-1] in ("()", "[]"):  # (input,last_block): a tuple of bare words
        items = tuple(_parse_value(v) for v in _split_top_level(text[1:-1]))
        return items if text[0] == "(" else list(items)
    return text


def _format_value(value) -> str:
    if isinstance(value, (list, tuple)):
        return "(" + ",".join(_format_value(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)


# -- data sources -------------------------------------------------------------------------------------
@dataclass
class Chunk:
    """Consecutive images of a source: ids, uint8 (H,W,C) images (sizes may differ), labels, bool masks."""
    ids: List[str]
    images: List[np.ndarray]
    labels: Optional[np.ndarray] = None
    masks: Optional[List[np.ndarray]] = None


class Source:
    """A named, re-iterable sequence of images in a fixed order, read in chunks (bounded memory).

    Subclasses set ``name``, ``size`` (number of images, None if unknown), ``has_labels``, ``has_masks``,
    ``class_names`` and implement ``chunks``.
    """
    name = "data"
    size: Optional[int] = None
    has_labels = False
    has_masks = False
    class_names: Optional[List[str]] = None

    def chunks(self, size: int) -> Iterator[Chunk]:
        raise NotImplementedError


class Dataset(Source):
    """Images held in memory (generated shapes, an .npz, arrays from Python)."""

    def __init__(self, name, ids, images, labels=None, masks=None, class_names=None):
        n = len(images)
        if n == 0:
            raise ValueError(f"data {name!r} holds no images")
        if len(ids) != n or len(set(ids)) != n:
            raise ValueError(f"data {name!r}: need one unique id per image")
        if labels is not None:
            labels = np.asarray(labels).astype(np.int64).reshape(-1)
            if len(labels) != n:
                raise ValueError(f"data {name!r}: {n} images but {len(labels)} labels")
        if masks is not None and len(masks) != n:
            raise ValueError(f"data {name!r}: {n} images but {len(masks)} masks")
        self.name, self.ids, self.images, self.labels, self.masks = name, list(ids), list(images), labels, masks
        self.has_labels, self.has_masks, self.class_names = labels is not None, masks is not None, class_names
        self.size = n

    def __len__(self):
        return len(self.images)

    def limited(self, limit) -> "Dataset":
        if limit is None or limit >= len(self):
            return self
        return Dataset(self.name, self.ids[:limit], self.images[:limit],
                       None if self.labels is None else self.labels[:limit],
                       None if self.masks is None else self.masks[:limit], self.class_names)

    def chunks(self, size):
        for i in range(0, len(self), size):
            yield Chunk(self.ids[i:i + size], self.images[i:i + size],
                        None if self.labels is None else self.labels[i:i + size],
                        None if self.masks is None else self.masks[i:i + size])


def load_data(data, limit: Optional[int] = None, split: str = "validation", data_dir=None, manual_dir=None,
              download: bool = True) -> Source:
    """A :class:`Source` from ``data``:

    * ``"shapes:N"`` (or ``"shapes:N:seed=S"``): N generated shapes images with masks (``make_demo_data``);
    * an ``.npz`` with ``images`` (N,H,W,C) and optional ``labels``, ``masks`` (N,H,W), ``ids``;
    * an image folder: class subfolders (ImageNet wnids map to ImageNet indices, integer names to
      themselves, other names to their sorted position) or a ``labels.csv`` with columns ``file``,
      ``label`` (int) and optional ``mask`` (an image file, nonzero = object);
    * a tfds name (``"imagenet2012"``, or ``"tfds:name"``) read with ``split``, ``data_dir`` and
      ``manual_dir`` (where the archives of manually downloaded data sets go);
    * a ``Source`` or a dict with ``images`` / ``labels`` / ``masks`` (Python only).

    ``limit``: only the first ``limit`` images (in the source's order). Folders and tfds are read
    chunk by chunk while the runner goes, so memory does not grow with the data set.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    if isinstance(data, Dataset):
        return data.limited(limit)
    if isinstance(data, Source):
        return data
    if isinstance(data, dict):
        return _from_arrays("arrays", data, limit)
    if not isinstance(data, (str, os.PathLike)):
        raise TypeError(f"data must be a string (shapes:N, .npz, folder, tfds name), a dict or a Source, "
                        f"got {type(data).__name__}")
    text = os.fspath(data)
    if text.startswith("shapes:"):
        return _shapes(text, limit)
    if os.path.isfile(text) and text.endswith(".npz"):
        with np.load(text, allow_pickle=False) as npz:
            return _from_arrays(text, {k: npz[k] for k in npz.files}, limit)
    if os.path.isdir(text):
        return FolderSource(text, limit)
    if text.endswith(".npz") or os.sep in text or text.startswith("."):
        raise ValueError(f"data {text!r}: no such .npz file or image folder")
    return TfdsSource(text[5:] if text.startswith("tfds:") else text, limit, split, data_dir, manual_dir, download)


def _shapes(text, limit) -> Dataset:
    from .demo import DEMO_CLASS_NAMES, make_demo_data

    parts = text.split(":")
    options = parse_spec("shapes:" + ",".join(parts[2:]), "data").options
    seed = options.pop("seed", 1)
    if options or len(parts) < 2 or not parts[1].isdigit() or int(parts[1]) < 1:
        raise ValueError(f"data {text!r}: expected 'shapes:N' or 'shapes:N:seed=S' with N >= 1")
    d = make_demo_data(int(parts[1]), seed=seed)  # all N, then the first `limit`: the images do not depend on limit
    ds = Dataset(text, [f"{i:06d}" for i in range(int(parts[1]))], list(d["images"]), d["labels"],
                 list(d["masks"]), list(DEMO_CLASS_NAMES))
    return ds.limited(limit)


def _from_arrays(name, arrays, limit) -> Dataset:
    if "images" not in arrays:
        raise ValueError(f"data {name!r} has no 'images' array (found: {sorted(arrays)})")
    images = _as_uint8(np.asarray(arrays["images"]), name)
    if images.ndim != 4:
        raise ValueError(f"data {name!r}: images must be (N, H, W, C), got shape {images.shape}")
    n = min(len(images), limit) if limit else len(images)
    labels = arrays.get("labels")
    masks = arrays.get("masks")
    if masks is not None:
        masks = np.asarray(masks).astype(bool)
        if masks.shape != images.shape[:3]:
            raise ValueError(f"data {name!r}: masks must be (N, H, W) = {images.shape[:3]}, got {masks.shape}")
        masks = list(masks[:n])
    ids = [str(i) for i in np.asarray(arrays["ids"])[:n]] if "ids" in arrays else [f"{i:06d}" for i in range(n)]
    return Dataset(name, ids, list(images[:n]), None if labels is None else np.asarray(labels)[:n], masks)


def _as_uint8(images: np.ndarray, name) -> np.ndarray:
    if images.dtype == np.uint8:
        return images
    if not np.issubdtype(images.dtype, np.number) or images.min() < 0 or images.max() > 255:
        raise ValueError(f"data {name!r}: images must be uint8 or numbers in [0, 255]")
    return np.round(images).astype(np.uint8)


class FolderSource(Source):
    """An image folder: class subfolders, or a ``labels.csv`` (file, label[, mask]); files read per chunk."""

    def __init__(self, root, limit=None):
        self.name, self.root = os.fspath(root), os.fspath(root)
        csv_path = os.path.join(root, "labels.csv")
        if os.path.isfile(csv_path):
            rows = _read_labels_csv(csv_path)
            files, labels = [r["file"] for r in rows], [int(r["label"]) for r in rows]
            masks = [r.get("mask") or None for r in rows]
            if any(masks) and not all(masks):
                raise ValueError(f"data {root!r}: labels.csv gives a mask for some images only")
            self.mask_files = masks if all(masks) else None
        else:
            classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
            if not classes:
                raise ValueError(f"data {root!r}: an image folder needs class subfolders or a labels.csv")
            index = _class_indices(classes)
            files, labels = [], []
            for c in classes:
                for f in sorted(os.listdir(os.path.join(root, c))):
                    if f.lower().endswith(IMAGE_EXTENSIONS):
                        files.append(os.path.join(c, f))
                        labels.append(index[c])
            self.mask_files, self.class_names = None, classes
        n = min(len(files), limit) if limit else len(files)
        if n == 0:
            raise ValueError(f"data {root!r}: no images found")
        missing = [f for f in files[:n] if not os.path.isfile(os.path.join(root, f))]
        if missing:
            raise ValueError(f"data {root!r}: {len(missing)} listed image(s) missing, e.g. {missing[0]!r}")
        self.files, self.labels = files[:n], np.array(labels[:n], np.int64)
        self.mask_files = None if self.mask_files is None else self.mask_files[:n]
        self.has_labels, self.has_masks, self.size = True, self.mask_files is not None, n

    def chunks(self, size):
        from PIL import Image

        def read(name, mode):
            with Image.open(os.path.join(self.root, name)) as img:
                return np.asarray(img.convert(mode))

        for i in range(0, len(self.files), size):
            files = self.files[i:i + size]
            masks = None if self.mask_files is None else [read(m, "L") > 0 for m in self.mask_files[i:i + size]]
            yield Chunk(list(files), [read(f, "RGB") for f in files], self.labels[i:i + size], masks)


def _read_labels_csv(path) -> List[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"file", "label"} <= set(rows[0]):
        raise ValueError(f"{path}: labels.csv needs a header with columns 'file' and 'label' (and optional 'mask')")
    for r in rows:
        try:
            int(r["label"])
        except ValueError:
            raise ValueError(f"{path}: label {r['label']!r} of {r['file']!r} is not an integer class index") from None
    return rows


def _class_indices(classes: Sequence[str]) -> Dict[str, int]:
    import keras_apps

    wnids = {w: i for i, w in enumerate(keras_apps.wnids())}
    if all(c in wnids for c in classes):
        return {c: wnids[c] for c in classes}
    if all(c.isdigit() for c in classes):
        return {c: int(c) for c in classes}
    return {c: i for i, c in enumerate(classes)}


class TfdsSource(Source):
    """A tensorflow-datasets split, read in order (``shuffle_files=False``); ids "index:file_name"."""

    def __init__(self, name, limit=None, split="validation", data_dir=None, manual_dir=None, download=True):
        import tensorflow_datasets as tfds

        manual_dir = manual_dir or os.path.join(data_dir or os.path.expanduser("~/tensorflow_datasets"),
                                                "downloads", "manual")
        try:
            ds, info = tfds.load(name, split=split, data_dir=data_dir, with_info=True, download=download,
                                 shuffle_files=False, download_and_prepare_kwargs={
                                     "download_config": tfds.download.DownloadConfig(manual_dir=manual_dir)})
        except Exception as err:  # noqa: BLE001 - tfds raises many kinds; all mean "data not available"
            hint = (" For imagenet2012 download ILSVRC2012_img_val.tar (and ILSVRC2012_img_train.tar) from "
                    f"https://image-net.org by hand and put them in {manual_dir} (or pass --manual-dir)."
                    if name.startswith("imagenet") else "")
            raise ValueError(f"could not load tfds data set {name!r} split {split!r} (data_dir={data_dir}, "
                             f"manual_dir={manual_dir}): {type(err).__name__}: {err}.{hint}") from err
        features = info.features
        if "image" not in features:
            raise ValueError(f"tfds data set {name!r} has no 'image' feature (features: {sorted(features)})")
        self.name, self.ds = f"tfds:{name}/{split}", ds.take(limit) if limit else ds
        try:
            total = info.splits[split].num_examples
        except Exception:  # noqa: BLE001 - split arithmetic ("validation[:10%]") or a mocked info
            total = None
        self.size = min(limit, total) if limit and total else (limit or total)
        self.has_labels = "label" in features
        self.has_masks = "segmentation_mask" in features
        self.class_names = list(features["label"].names) if self.has_labels and hasattr(features["label"],
                                                                                          "names") else None

    def chunks(self, size):
        import tensorflow_datasets as tfds

        chunk = Chunk([], [], [] if self.has_labels else None, [] if self.has_masks else None)
        for i, ex in enumerate(tfds.as_numpy(self.ds)):
            fname = ex.get("file_name")
            chunk.ids.append(f"{i:07d}" + (f":{fname.decode()}" if isinstance(fname, bytes) and fname else ""))
            image = ex["image"]
            chunk.images.append(image if image.shape[-1] == 3 else np.repeat(image[..., :1], 3, -1))
            if self.has_labels:
                chunk.labels.append(int(ex["label"]))
            if self.has_masks:
                chunk.masks.append(np.asarray(ex["segmentation_mask"]).reshape(image.shape[:2]) > 0)
            if len(chunk.ids) == size:
                yield _finished(chunk)
                chunk = Chunk([], [], [] if self.has_labels else None, [] if self.has_masks else None)
        if chunk.ids:
            yield _finished(chunk)


def _finished(chunk: Chunk) -> Chunk:
    if chunk.labels is not None:
        chunk.labels = np.asarray(chunk.labels, np.int64)
    return chunk


def fit_to_input(images: Sequence[np.ndarray], size, mode: str = "crop", masks=None):
    """Float32 (N,H,W,3) pixels at ``size`` = (H, W), and bool (N,H,W) masks (or None).

    ``mode="crop"``: scale the shorter side to fit, then centre-crop (keeps the aspect ratio);
    ``"stretch"``: resize straight to (H, W). Images already at (H, W) are unchanged.
    """
    from PIL import Image

    if mode not in RESIZE:
        raise ValueError(f"resize must be one of {RESIZE}, got {mode!r}")
    h, w = int(size[0]), int(size[1])

    def fit(arr, resample):
        if arr.shape[:2] == (h, w):
            return arr
        img = Image.fromarray(arr)
        if mode == "stretch":
            return np.asarray(img.resize((w, h), resample))
        scale = max(h / arr.shape[0], w / arr.shape[1])
        sw, sh = max(w, round(arr.shape[1] * scale)), max(h, round(arr.shape[0] * scale))
        left, top = (sw - w) // 2, (sh - h) // 2
        return np.asarray(img.resize((sw, sh), resample).crop((left, top, left + w, top + h)))

    x = np.stack([fit(np.asarray(im, np.uint8), Image.BILINEAR) for im in images]).astype(np.float32)
    m = None if masks is None else np.stack([fit(np.asarray(mk, np.uint8) * 255, Image.NEAREST) > 127
                                             for mk in masks])
    return x, m


# -- the results store --------------------------------------------------------------------------------
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


def result_key(record) -> tuple:
    return record["model"], record["method"], record["image"], int(record["target"])


class ResultStore:
    """Append-only JSON-lines store of records keyed by (model, method, image, target).

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
        self.named = {(r["kind"], r.get("model") or r.get("metric")) for r in records
                      if r.get("kind") in ("model", "metric")}
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
        elif record.get("kind") in ("model", "metric"):
            self.named.add((record["kind"], record.get("model") or record.get("metric")))

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


# -- models -------------------------------------------------------------------------------------------
@dataclass
class LoadedModel:
    label: str
    adapter: object
    random_weights: bool
    weights: Optional[str]


def check_model(spec: Spec, weights="imagenet"):
    """Fail early: ``spec`` names "demo", a .keras/.h5 file, a SavedModel dir or a Keras application."""
    unknown = sorted(set(spec.options) - {"weights"})
    if unknown:
        raise ValueError(f"model {spec.label!r}: unknown option(s) {unknown}; valid: weights")
    if spec.name == "demo" or os.path.isdir(spec.name) or (os.path.isfile(spec.name)
                                                            and spec.name.endswith((".keras", ".h5"))):
        return
    import keras_apps

    try:
        app = keras_apps.get(spec.name)
    except ValueError:
        raise ValueError(f"unknown model {spec.name!r}: expected 'demo', a .keras/.h5 file, a SavedModel "
                         f"directory or a Keras application ({', '.join(keras_apps.NAMES)})") from None
    w = _weights(spec.options.get("weights", weights))
    if w == "imagenet":
        keras_apps.fetch_weights(app)  # raises WeightsUnavailableError saying where to put the file
    elif w is not None and not os.path.isfile(w):
        raise ValueError(f"model {spec.label!r}: weights file {w!r} not found")


def load_model(model, weights="imagenet", batch_size: int = 32) -> LoadedModel:
    """A :class:`LoadedModel` from a spec string / Spec, a keras.Model or a ModelAdapter."""
    from .models import as_model

    if not isinstance(model, (str, Spec, tuple)):
        adapter = as_model(model, batch_size=batch_size)
        return LoadedModel(getattr(adapter, "name", "model"), adapter, False, None)
    spec = parse_spec(model, "model")
    check_model(spec, weights)
    w = _weights(spec.options.get("weights", weights))
    if spec.name == "demo":
        from .demo import DEMO_CLASS_NAMES, load_demo_model

        adapter = as_model(load_demo_model(), batch_size=batch_size)
        adapter.class_names = list(DEMO_CLASS_NAMES)
        return LoadedModel("demo", adapter, False, None)
    if os.path.exists(spec.name):
        return LoadedModel(spec.name, as_model(spec.name, batch_size=batch_size), False, None)
    import keras_apps

    name = keras_apps.get(spec.name).name
    adapter = as_model(name, batch_size=batch_size, weights=w)
    label = name if w == "imagenet" else f"{name}:weights={'none' if w is None else w}"
    return LoadedModel(label, adapter, w is None, "none" if w is None else w)


def _weights(w):
    return None if w is None or (isinstance(w, str) and w.lower() == "none") else w


# -- the runner ---------------------------------------------------------------------------------------
@dataclass
class RunSummary:
    store: str
    report: Optional[str]
    computed: int   # records written by this call
    already_done: int  # records found in the store and skipped
    random_weights: List[str] = field(default_factory=list)


def method_label(method) -> str:
    """The store's name of a method: its spec label, or for a Method instance its name + non-default options."""
    from .methods import Method

    if isinstance(method, Method):
        changed = {k: v for k, v in method.options.items() if type(method).defaults.get(k, object()) != v}
        return Spec(method.name, changed).label
    return parse_spec(method, "method").label


def _method(method):
    from .methods import Method, get_method

    if isinstance(method, Method):
        return method
    spec = parse_spec(method, "method")
    return get_method(spec.name, **spec.options)


def _base_metric(name):
    """The function a registered metric name wraps (presets share it)."""
    from .metrics import get_metric

    fn = get_metric(name)
    return getattr(fn, "__wrapped__", fn)


def _metric_specs(metrics) -> List[Spec]:
    from .metrics import get_metric
    from .metrics.grids import grid_localization
    from .metrics.sanity import cascading_randomization_metric, sigma_perturbation_metric

    specs = [parse_spec(m, "metric") for m in metrics]
    for s in specs:
        fn = get_metric(s.name)
        bad = sorted(set(s.options) - set(fn.defaults))
        if bad:
            raise ValueError(f"unknown option(s) {bad} for metric {s.name!r}; valid: {', '.join(sorted(fn.defaults))}")
        if _base_metric(s.name) in (grid_localization, cascading_randomization_metric, sigma_perturbation_metric):
            raise ValueError(f"metric {s.name!r} does not score attribution maps of plain images; use "
                             f"eval/rao_grids.py (grids) or tfxattr.metrics.sanity directly")
    if len({s.label for s in specs}) != len(specs):
        raise ValueError("metrics are listed twice")
    return specs


def _nonempty(items, what):
    items = [items] if isinstance(items, (str, Spec)) else list(items or [])
    if not items:
        raise ValueError(f"{what} is empty: give at least one")
    return items


def evaluate(data, models, methods, metrics, out, *, correct_only: bool = False, target: str = "label",
             limit: Optional[int] = None, weights="imagenet", batch_size: int = 32, images_per_batch: int = 16,
             split: str = "validation", data_dir=None, manual_dir=None, resize: str = "crop", reduce: str = "auto",
             seed: int = 0, progress=True, report: bool = True, aggregation: Optional[dict] = None,
             chunk_size: int = 256, log: Callable[[str], None] = None) -> RunSummary:
    """Score every method with every metric on every model; results go to ``<out>/results.jsonl``.

    ``models``: "demo", Keras application names (optionally "name:weights=none|PATH"), .keras files,
    SavedModel dirs, or keras.Model / ModelAdapter objects. ``methods`` / ``metrics``: spec strings
    ("ig+idgi:steps=200", "insertion:base=blur") or Method instances. ``correct_only``: keep only images
    the model classifies correctly (IDGI). ``target``: explain the "label" or the "predicted" class.
    ``reduce``: channel reduction of (N,H,W,C) attributions to maps; "auto" = sum of |a| over channels
    (PAIR's grayscale map), except single-channel maps (Grad-CAM, IIA, XRAI), which are used as they are.
    ``aggregation``: per-score overrides for the report (e.g. {"aic": "mean"}). ``chunk_size``: images
    read and fitted to a model at a time (memory bound); ``images_per_batch``: images attributed together.
    """
    from .metrics.localization import localization
    from .visualize import REDUCTIONS

    log = log or (lambda msg: print(msg, file=sys.stderr))
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if resize not in RESIZE:
        raise ValueError(f"resize must be one of {RESIZE}, got {resize!r}")
    if reduce != "auto" and reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be 'auto' or one of {REDUCTIONS}, got {reduce!r}")
    for name, value in (("batch_size", batch_size), ("images_per_batch", images_per_batch),
                        ("chunk_size", chunk_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    metric_specs = _metric_specs(_nonempty(metrics, "metrics"))
    method_objs = [(method_label(m), _method(m)) for m in _nonempty(methods, "methods")]
    if len({label for label, _ in method_objs}) != len(method_objs):
        raise ValueError("methods are listed twice")
    model_items = _nonempty(models, "models")
    for m in model_items:
        if isinstance(m, (str, Spec, tuple)):
            check_model(parse_spec(m, "model"), weights)
    source = load_data(data, limit, split, data_dir, manual_dir)
    if not source.has_masks and any(_base_metric(s.name) is localization for s in metric_specs):
        raise ValueError(f"metric 'localization' needs object masks; data {source.name!r} has none")
    if (correct_only or target == "label") and not source.has_labels:
        raise ValueError(f"data {source.name!r} has no labels: use target='predicted' without correct_only")
    config = {"data": source.name, "target": target, "resize": resize, "reduce": reduce, "seed": seed,
              "metrics": {s.label: json_safe(s.options) for s in metric_specs}}
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    store_path = os.path.join(out, STORE_NAME)
    summary = RunSummary(store_path, None, 0, 0)
    with ResultStore(store_path) as store:
        check_config(store, config)
        for model in model_items:
            loaded = load_model(model, weights, batch_size)
            if loaded.random_weights:
                summary.random_weights.append(loaded.label)
                log(RANDOM_WEIGHTS_WARNING.format(models=loaded.label))
            _run_model(store, loaded, source, method_objs, metric_specs, summary, correct_only=correct_only,
                       target=target, batch_size=batch_size, images_per_batch=images_per_batch,
                       chunk_size=chunk_size, resize=resize, reduce=reduce, seed=seed, progress=progress, log=log)
    if report:
        from .report import write_report

        summary.report = write_report(store_path, out, aggregation=aggregation)
    return summary


def check_config(store: ResultStore, config: dict):
    previous = store.config()
    if previous is None:
        store.append({"kind": "run", "config": config})
        return
    diff = sorted(k for k in set(previous) | set(config) if previous.get(k) != config.get(k))
    if diff:
        detail = "; ".join(f"{k}: {previous.get(k)!r} then, {config.get(k)!r} now" for k in diff)
        raise ValueError(f"results store {store.path} was written with another configuration ({detail}); "
                         f"use another output directory, or delete the store to start over")


def _run_model(store, loaded, source, methods, metric_specs, summary, *, correct_only, target, batch_size,
               images_per_batch, chunk_size, resize, reduce, seed, progress, log):
    """One model over the whole source, chunk by chunk; then the model's record (counts, exclusions)."""
    from tqdm.auto import tqdm

    adapter = loaded.adapter
    total = None if source.size is None else source.size * len(methods)
    seen, correct, excluded = 0, 0, []
    with tqdm(total=total, desc=loaded.label, unit="img", disable=not progress, leave=False) as bar:
        for chunk in source.chunks(chunk_size):
            x, masks = fit_to_input(chunk.images, _input_size(adapter, chunk), resize, chunk.masks)
            _check_labels(chunk, loaded, adapter, target, correct_only)
            probs = adapter.probabilities(x)
            predicted = probs.argmax(-1)
            keep = np.arange(len(x))
            if chunk.labels is not None:
                correct += int(np.sum(predicted == chunk.labels))
                if correct_only:
                    keep = np.flatnonzero(predicted == chunk.labels)
                    excluded += [chunk.ids[i] for i in np.setdiff1d(np.arange(len(x)), keep)]
            seen += len(x)
            targets = (chunk.labels if target == "label" else predicted).astype(np.int32)
            batch = _Batch(chunk, x, masks, targets, predicted, probs)
            for label, method in methods:
                todo = {i for i in keep if (loaded.label, label, chunk.ids[i], int(targets[i])) not in store.done}
                summary.already_done += len(keep) - len(todo)
                bar.set_postfix_str(label)
                bar.update(len(x) - len(todo))
                # fixed batches over the kept images: a resumed run sees the same batches as an uninterrupted one
                for start in range(0, len(keep), images_per_batch):
                    idx = np.array([i for i in keep[start:start + images_per_batch] if i in todo], dtype=int)
                    if len(idx) == 0:
                        continue
                    for record in _score_batch(loaded, label, method, batch, idx, metric_specs, store,
                                               batch_size=batch_size, reduce=reduce, seed=seed):
                        store.append(record)
                        summary.computed += 1
                    bar.update(len(idx))
    store.append({"kind": "model", "model": loaded.label, "weights": loaded.weights,
                  "random_weights": loaded.random_weights, "input_shape": list(adapter.input_shape),
                  "images": seen, "correct": correct if source.has_labels else None, "correct_only": correct_only,
                  "excluded": excluded})
    log(f"{loaded.label}: {seen} images" + (f", {len(excluded)} excluded as misclassified" if correct_only else ""))


@dataclass
class _Batch:
    """A chunk fitted to one model: pixels, masks, targets and the model's predictions."""
    chunk: Chunk
    x: np.ndarray
    masks: Optional[np.ndarray]
    targets: np.ndarray
    predicted: np.ndarray
    probs: np.ndarray


def _input_size(adapter, chunk):
    h, w = adapter.input_shape[:2]
    return (h, w) if h is not None and w is not None else chunk.images[0].shape[:2]


def _check_labels(chunk, loaded, adapter, target, correct_only):
    if chunk.labels is None or not len(chunk.labels):
        return
    if chunk.labels.max() >= adapter.num_classes:
        raise ValueError(f"labels go up to {chunk.labels.max()} but model {loaded.label!r} has "
                         f"{adapter.num_classes} classes")
    if (target == "label" or correct_only) and chunk.labels.min() < 0:
        bad = chunk.ids[int(np.argmin(chunk.labels))]
        raise ValueError(f"image {bad!r} has no label ({chunk.labels.min()}): use target='predicted' "
                         "without correct_only for unlabelled data")


def attribution_maps(attributions: np.ndarray, reduce: str = "auto") -> np.ndarray:
    """(N,H,W) maps: ``reduce`` over channels; "auto" = sum of |a|, but a single-channel attribution
    (a method's own map: Grad-CAM, IIA, XRAI) is kept signed."""
    from .visualize import reduce_channels

    if reduce == "auto":
        reduce = "sum" if attributions.shape[-1] == 1 else "sum_abs"
    return reduce_channels(attributions, reduce)


def _score_batch(loaded, label, method, batch, idx, metric_specs, store, *, batch_size, reduce,
                 seed) -> List[dict]:
    """Attribute images ``idx`` of ``batch`` once, score the maps with every metric, one record per image."""
    from .metrics import METRICS

    adapter, chunk, x, targets = loaded.adapter, batch.chunk, batch.x, batch.targets
    start = time.perf_counter()
    attr = np.asarray(method.attribute(adapter, x[idx], targets[idx], progress=False, seed=seed))
    seconds = (time.perf_counter() - start) / len(idx)
    if not np.all(np.isfinite(attr)):
        bad = [chunk.ids[i] for i, a in zip(idx, attr) if not np.all(np.isfinite(a))]
        raise FloatingPointError(f"{loaded.label} / {label}: non-finite attributions for images {bad}")
    maps = attribution_maps(attr, reduce)
    results = {}
    for spec in metric_specs:
        fn = METRICS[spec.name]
        options = dict(spec.options)
        if "labels" in fn.defaults and chunk.labels is not None and "labels" not in options:
            options["labels"] = chunk.labels[idx]  # POS/NEG count hits against the ground truth
        results[spec.label] = fn(adapter, x[idx], maps, targets=targets[idx], batch_size=batch_size,
                                 masks=None if batch.masks is None else batch.masks[idx], **options)
        _describe_metric(store, spec, results[spec.label])
    records = []
    for j, i in enumerate(idx):
        rec = {"kind": "result", "model": loaded.label, "method": label, "image": chunk.ids[i],
               "target": int(targets[i]), "label": None if chunk.labels is None else int(chunk.labels[i]),
               "predicted": int(batch.predicted[i]), "probability": json_safe(batch.probs[i, targets[i]]),
               "seconds": round(seconds, 4), "scores": {}, "skipped": {}, "curves": {}}
        for name, r in results.items():
            rec["scores"][name] = {k: json_safe(v[j]) for k, v in r.scores.items()}
            rec["skipped"][name] = {k: s[j] for k, s in r.skipped.items() if j in s}
            if r.curves:
                rec["curves"][name] = {k: rounded(c.y[j]) for k, c in r.curves.items()}
        records.append(rec)
    return records


def _describe_metric(store, spec, result):
    """Once per metric: its options, aggregation, directions and curve x-axes (the report needs them)."""
    if ("metric", spec.label) in store.named:
        return
    store.append({"kind": "metric", "metric": spec.label, "name": spec.name, "options": json_safe(result.options),
                  "aggregation": result.aggregation, "higher_is_better": dict(result.higher_is_better),
                  "curves": {k: {"x": rounded(c.x, 8), "scale": float(c.scale)} for k, c in result.curves.items()}})
