"""The one chunking primitive: every model call of every method goes through chunks of ``batch_size``.

Work is a list of rows (an image, or an (image, point) pair); :func:`chunks` cuts any such list into
consecutive blocks of at most ``size`` rows, so memory is bounded by ``batch_size`` whatever the
number of images or path points.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np


def spans(n: int, size: int) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)``, each at most ``size`` long."""
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def chunks(rows, size: int) -> Iterator:
    """``rows[span]`` for every span of :func:`spans` (arrays, lists, tensors)."""
    for span in spans(len(rows), size):
        yield rows[span]


def count(n: int, size: int) -> int:
    """How many chunks :func:`spans` yields for ``n`` rows."""
    return -(-n // size)


def pairs(n_images: int, ids) -> np.ndarray:
    """(image, id) rows, image-major: ``[[0, ids[0]], [0, ids[1]], ..., [n-1, ids[-1]]]``."""
    ids = np.asarray(ids, np.int64)
    image = np.repeat(np.arange(n_images), len(ids))
    return np.stack([image, np.tile(ids, n_images)], 1)


def per_image(image_ids, rows: np.ndarray, n_images: int, reduce=np.add, out=None) -> np.ndarray:
    """Fold per-row results ``rows`` into one result per image with ``reduce`` (``np.add``, ``np.maximum``)."""
    image_ids = np.asarray(image_ids)
    if out is None:
        out = np.zeros((n_images,) + rows.shape[1:], rows.dtype)
    reduce.at(out, image_ids, rows)
    return out
