"""Data sources for the evaluation runner: generated shapes, .npz files, image folders, tfds.

Every source yields :class:`Chunk` s of images (uint8), labels and optional masks, chunk by chunk, so
memory does not grow with the data set; :func:`fit_to_input` fits images to a model's input size.
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np

from ..batching import spans
from ..checks import positive_int
from ..inputs import PIXEL_MAX, PIXEL_MAX_16, class_index, read_image_file
from ..registry import Registry
from .specs import parse_spec

RESIZE = ("crop", "stretch")
#: how many names an error about unmatched class folders lists before "..."
NAMES_SHOWN = 20
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")


@dataclass
class Chunk:
    """Consecutive images of a source: ids, uint8 (H,W,C) images (sizes may differ), labels, bool masks;
    ``skipped``: id -> reason of the files in this stretch that could not be read (left out)."""
    ids: List[str]
    images: List[np.ndarray]
    labels: Optional[np.ndarray] = None
    masks: Optional[List[np.ndarray]] = None
    skipped: Dict[str, str] = field(default_factory=dict)


class Source:
    """A named, re-iterable sequence of images in a fixed order, read in chunks (bounded memory).

    Subclasses set ``name``, ``size`` (number of images, None if unknown), ``has_labels``, ``has_masks``,
    ``class_names`` and implement ``chunks``. ``label_names``: set when the labels are positions in
    this list of names (class folders) rather than a model's class indices; :func:`label_map`
    maps them to a model's classes by name.
    """
    name = "data"
    size: Optional[int] = None
    has_labels = False
    has_masks = False
    class_names: Optional[List[str]] = None
    label_names: Optional[List[str]] = None

    def chunks(self, size: int) -> Iterator[Chunk]:
        raise NotImplementedError

    def chunk_at(self, index: int, size: int) -> Chunk:
        """Chunk ``index`` of :meth:`chunks` (``size``): a shard a distributed worker reads on its own.
        Sources that cannot seek read the chunks before it (subclasses that can, override this)."""
        for i, chunk in enumerate(self.chunks(size)):
            if i == index:
                return chunk
        raise IndexError(f"data {self.name!r} has no chunk {index} of {size} images")


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
        for span in spans(len(self), size):
            yield self._chunk(span)

    def chunk_at(self, index, size):
        return self._chunk(slice(index * size, min((index + 1) * size, len(self))))

    def _chunk(self, span: slice) -> Chunk:
        return Chunk(self.ids[span], self.images[span], None if self.labels is None else self.labels[span],
                     None if self.masks is None else self.masks[span])


def load_data(data, limit: Optional[int] = None, split: str = "validation", data_dir=None, manual_dir=None,
              download: bool = True) -> Source:
    """A :class:`Source` from ``data``:

    * ``"shapes:N"`` (or ``"shapes:N:seed=S"``): N generated shapes images with masks (``make_demo_data``);
    * an ``.npz`` with ``images`` (N,H,W,C) and optional ``labels``, ``masks`` (N,H,W), ``ids``;
    * an image folder: class subfolders (ImageNet wnids map to ImageNet indices, integer names to
      themselves, other names to the model's class of that name, see :func:`label_map`) or a
      ``labels.csv`` with columns ``file``, ``label`` (int) and optional ``mask`` (an image file,
      nonzero = object). Files that cannot be read are skipped with the reason (``Chunk.skipped``);
      16-bit, 32-bit and float images are scaled to 0..255;
    * a tfds name (``"imagenet2012"``, or ``"tfds:name"``) read with ``split``, ``data_dir`` and
      ``manual_dir`` (where the archives of manually downloaded data sets go);
    * a ``Source`` or a dict with ``images`` / ``labels`` / ``masks`` (Python only).

    ``limit``: only the first ``limit`` images (in the source's order). Folders and tfds are read
    chunk by chunk while the runner goes, so memory does not grow with the data set.
    """
    positive_int(limit, "limit", allow_none=True)
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
    options = dict(split=split, data_dir=data_dir, manual_dir=manual_dir, download=download)
    for source in DATA_SOURCES.values():  # the first that recognises the text wins
        if source.matches(text):
            return source.open(text, limit, **options)
    raise ValueError(f"data {text!r}: no such .npz file or image folder")  # the tfds source takes all other names


@dataclass(frozen=True)
class DataSource:
    """A kind of data string: ``matches(text)`` says whether ``text`` is one, ``open(text, limit, split,
    data_dir, manual_dir, download)`` gives its :class:`Source`."""
    name: str
    summary: str
    matches: Callable[[str], bool]
    open: Callable[..., Source]


def _npz(text, limit, **_):
    with np.load(text, allow_pickle=False) as npz:
        return _from_arrays(text, {k: npz[k] for k in npz.files}, limit)


def _missing_file(text, limit, **_):
    raise ValueError(f"data {text!r}: no such .npz file or image folder")


def _tfds(text, limit, split, data_dir, manual_dir, download):
    return TfdsSource(text[5:] if text.startswith("tfds:") else text, limit, split, data_dir, manual_dir, download)


DATA_SOURCES: Registry[DataSource] = Registry("data source")
for _source in (
        DataSource("shapes", "'shapes:N': N generated shapes images with exact object masks",
                   lambda t: t.startswith("shapes:"), lambda t, limit, **_: _shapes(t, limit)),
        DataSource("npz", "an .npz file with images (N,H,W,C) and optional labels, masks, ids",
                   lambda t: os.path.isfile(t) and t.endswith(".npz"), _npz),
        DataSource("folder", "an image folder: class subfolders or a labels.csv",
                   os.path.isdir, lambda t, limit, **_: FolderSource(t, limit)),
        DataSource("missing", "a path that is neither (refused: no such file or folder)",
                   lambda t: t.endswith(".npz") or os.sep in t or t.startswith("."), _missing_file),
        DataSource("tfds", "a TensorFlow Datasets name ('imagenet2012' or 'tfds:name')", lambda t: True, _tfds)):
    DATA_SOURCES.register(_source.name, _source)


def register_data_source(source: DataSource, before: Optional[str] = "missing") -> DataSource:
    """Add a kind of data string, tried before ``before`` (default: before paths are refused and names go
    to tfds)."""
    return DATA_SOURCES.register(source.name, source, before=before)


def unregister_data_source(name: str) -> None:
    DATA_SOURCES.unregister(name)


def _shapes(text, limit) -> Dataset:
    from ..demo import DEMO_CLASS_NAMES, make_demo_data

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
    if images.dtype == np.uint16:  # 16-bit pixels: to 0..255 as 16-bit image files are
        return np.round(images.astype(np.float64) * (PIXEL_MAX / PIXEL_MAX_16)).astype(np.uint8)
    if not np.issubdtype(images.dtype, np.number) or images.min() < 0 or images.max() > 255:
        raise ValueError(f"data {name!r}: images must be uint8, uint16 (16-bit pixels) or numbers in [0, 255], got "
                         f"{images.dtype} in [{images.min():g}, {images.max():g}]")
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
            if index is None:  # named folders: sorted positions, which label_map renames to a model's classes
                index, self.label_names = {c: i for i, c in enumerate(classes)}, classes
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
        for span in spans(len(self.files), size):
            yield self._chunk(span)

    def chunk_at(self, index, size):
        return self._chunk(slice(index * size, min((index + 1) * size, len(self.files))))

    def _chunk(self, span: slice) -> Chunk:
        chunk = Chunk([], [], [], None if self.mask_files is None else [])
        for i in range(span.start, span.stop):
            path = os.path.join(self.root, self.files[i])
            try:  # one unreadable file is skipped with its reason; the run goes on
                image = _as_uint8(read_image_file(path, 3), self.files[i])
                mask = None if self.mask_files is None else \
                    read_image_file(os.path.join(self.root, self.mask_files[i]), 1)[..., 0] > 0
            except ValueError as err:
                reason = str(err)  # "<path>: why"; the id already names the image file
                chunk.skipped[self.files[i]] = reason[len(path) + 2:] if reason.startswith(path + ": ") else reason
                continue
            chunk.ids.append(self.files[i])
            chunk.images.append(image)
            chunk.labels.append(self.labels[i])
            if mask is not None:
                chunk.masks.append(mask)
        return _finished(chunk)


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


def _class_indices(classes: Sequence[str]) -> Optional[Dict[str, int]]:
    """Folder name -> class index for ImageNet wnids and integer names; None for other names."""
    import keras_apps

    wnids = {w: i for i, w in enumerate(keras_apps.wnids())}
    if all(c in wnids for c in classes):
        return {c: wnids[c] for c in classes}
    if all(c.isdigit() for c in classes):
        return {c: int(c) for c in classes}
    return None


def label_map(source: Source, class_names: Optional[Sequence[str]], model: str) -> Optional[np.ndarray]:
    """For a source whose labels are positions in ``source.label_names`` (class folders): the model's
    class index of each name (an array to index with the labels), or None when the labels need no map
    (already class indices, or a model without class names: sorted positions as they are). A folder
    name the model does not know raises ValueError listing the folders and the model's classes."""
    names = getattr(source, "label_names", None)
    if not names or not class_names:
        return None
    indices, unknown = [], []
    for name in names:
        try:
            indices.append(class_index(name, class_names, "class folder"))
        except ValueError:
            unknown.append(name)
    if unknown:
        shown = ", ".join(map(str, list(class_names)[:NAMES_SHOWN])) + (", ..." if len(class_names) > NAMES_SHOWN
                                                                         else "")
        raise ValueError(f"data {source.name!r}: class folder(s) {unknown} are not class names of model {model!r} "
                         f"(folders: {', '.join(names)}; model classes: {shown}); name the folders after the "
                         "model's classes (or their indices), or give a labels.csv with integer labels")
    return np.asarray(indices, np.int64)


class TfdsSource(Source):
    """A tensorflow-datasets split, read in order (``shuffle_files=False``); ids "index:file_name"."""

    def __init__(self, name, limit=None, split="validation", data_dir=None, manual_dir=None, download=True):
        import tensorflow_datasets as tfds

        manual_dir = manual_dir or os.path.join(data_dir or os.path.expanduser("~/tensorflow_datasets"),
                                                "downloads", "manual")
        said = io.StringIO()  # tfds prints "Downloading and preparing ..." on stdout, which is the results' channel
        try:
            with contextlib.redirect_stdout(said):
                ds, info = tfds.load(name, split=split, data_dir=data_dir, with_info=True, download=download,
                                     shuffle_files=False, download_and_prepare_kwargs={
                                         "download_config": tfds.download.DownloadConfig(manual_dir=manual_dir)})
        except Exception as err:  # noqa: BLE001 - tfds raises many kinds; all mean "data not available"
            hint = (" For imagenet2012 download ILSVRC2012_img_val.tar (and ILSVRC2012_img_train.tar) from "
                    f"https://image-net.org by hand and put them in {manual_dir} (or pass --manual-dir)."
                    if name.startswith("imagenet") else "")
            raise ValueError(f"could not load tfds data set {name!r} split {split!r} (data_dir={data_dir}, "
                             f"manual_dir={manual_dir}): {type(err).__name__}: {err}.{hint}") from err
        sys.stderr.write(said.getvalue())  # it did download: what tfds said goes beside the progress bars
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
