"""Data for the evaluation runner: :func:`load_data` turns a data string (generated shapes, an .npz file, an
image folder, a tfds name) or arrays into a :class:`~tfxattr.evaluation.source.Source`, by the first kind of
:data:`DATA_SOURCES` that recognises it; :func:`fit_to_input` fits images to a model's input size.

Every source yields :class:`~tfxattr.evaluation.source.Chunk` s of images (uint8), labels and optional masks,
chunk by chunk, so memory does not grow with the data set. Image folders: :mod:`.folders`; tfds:
:mod:`.tfds_source`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from ..checks import positive_int
from ..registry import Registry
from ..specs import parse_spec
from .folders import FolderSource
from .source import Chunk, Dataset, Source, as_uint8
from .tfds_source import TfdsSource

RESIZE = ("crop", "stretch")
__all__ = ["RESIZE", "Chunk", "Dataset", "Source", "DataSource", "DATA_SOURCES", "load_data", "register_data_source",
           "unregister_data_source", "fit_to_input", "FolderSource", "TfdsSource"]


def load_data(data, limit: Optional[int] = None, split: str = "validation", data_dir=None, manual_dir=None,
              download: bool = True) -> Source:
    """A :class:`Source` from ``data``:

    * ``"shapes:N"`` (or ``"shapes:N:seed=S"``): N generated shapes images with masks (``make_demo_data``);
    * an ``.npz`` with ``images`` (N,H,W,C) and optional ``labels``, ``masks`` (N,H,W), ``ids``;
    * an image folder: class subfolders (ImageNet wnids map to ImageNet indices, integer names to
      themselves, other names to the model's class of that name, see :func:`.folders.label_map`) or a
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
    images = as_uint8(np.asarray(arrays["images"]), name)
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
