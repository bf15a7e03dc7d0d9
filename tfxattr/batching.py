"""The one chunking primitive: every model call of every method goes through chunks of ``batch_size``.

Work is a list of rows (an image, an (image, point) pair, an (image, start point) pair); :func:`chunks`
cuts any such list into consecutive blocks of at most ``size`` rows, so memory is bounded by
``batch_size`` whatever the number of images or path points. :func:`groups` does the same for rows
that must share a key within one call (a PAIR ``call_model_function`` takes one class per call);
:func:`per_image` folds per-row results back into one result per image.
"""
from __future__ import annotations

from typing import Iterator, Tuple

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


def groups(keys, size: int) -> Iterator[Tuple[object, np.ndarray]]:
    """``(key, row indices)`` for the rows sharing each key (first-seen order), in chunks of at most
    ``size`` rows: every chunk is one call that needs a single key (e.g. one target class)."""
    keys = np.asarray(keys)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    for group in np.argsort(first, kind="stable"):
        rows = np.flatnonzero(inverse.reshape(-1) == group)
        for block in chunks(rows, size):
            yield keys[block[0]].item(), block


def per_image(image_ids, rows: np.ndarray, n_images: int, reduce=np.add, out=None) -> np.ndarray:
    """Fold per-row results ``rows`` into one result per image with ``reduce`` (``np.add``, ``np.maximum``).

    The rows of one image are reduced first, then folded into ``out`` (``out[i] = reduce(out[i],
    reduce.reduce(rows of i))``), so the order of additions does not depend on how rows were chunked
    within an image's block.
    """
    image_ids = np.asarray(image_ids)
    if out is None:
        out = np.zeros((n_images,) + rows.shape[1:], rows.dtype)
    for i in np.unique(image_ids):
        out[i] = reduce(out[i], reduce.reduce(rows[image_ids == i], axis=0))
    return out
