"""What every data source gives the evaluation runner: :class:`Chunk` s of images, read in order and in
bounded memory by a :class:`Source`; :class:`Dataset` holds them in memory."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional

import numpy as np

from ..batching import spans
from ..inputs import PIXEL_MAX, PIXEL_MAX_16


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
    this list of names (class folders) rather than a model's class indices; :func:`.folders.label_map`
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


def as_uint8(images: np.ndarray, name) -> np.ndarray:
    """uint8 pixels from uint8, uint16 (16-bit pixels, to 0..255) or numbers in [0, 255] (rounded); else a
    ValueError naming the data."""
    if images.dtype == np.uint8:
        return images
    if images.dtype == np.uint16:  # 16-bit pixels: to 0..255 as 16-bit image files are
        return np.round(images.astype(np.float64) * (PIXEL_MAX / PIXEL_MAX_16)).astype(np.uint8)
    if not np.issubdtype(images.dtype, np.number) or images.min() < 0 or images.max() > 255:
        raise ValueError(f"data {name!r}: images must be uint8, uint16 (16-bit pixels) or numbers in [0, 255], got "
                         f"{images.dtype} in [{images.min():g}, {images.max():g}]")
    return np.round(images).astype(np.uint8)


def finished(chunk: Chunk) -> Chunk:
    """``chunk`` with its labels as an int64 array (sources collect them in a list)."""
    if chunk.labels is not None:
        chunk.labels = np.asarray(chunk.labels, np.int64)
    return chunk
