"""What the perturbation metrics share: checked fractions and labels, pixel ranks, and the batched
prediction of every image's perturbed copies (:func:`predict_perturbed`: the copies of a few images go
through the model together, chunked by its ``batch_size``, built on worker processes when asked).
"""
from __future__ import annotations

import math

import numpy as np

from ..batching import chunks, spans
from ..parallel import worker_pool
from ..progress import progress_bar

#: perturbed images are built for as many source images as fill this many model batches at once
GROUP_BATCHES = 4


def check_fractions(values, name: str, ascending: bool = True) -> np.ndarray:
    """A 1-D float64 array of values in (0, 1], strictly increasing if ``ascending``."""
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numbers in (0, 1], got {values!r}") from err
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    bad = arr[~((arr > 0) & (arr <= 1))]
    if bad.size:
        raise ValueError(f"{name} must lie in (0, 1], got {bad.tolist()}")
    if ascending and np.any(np.diff(arr) <= 0):
        raise ValueError(f"{name} must be strictly increasing, got {arr.tolist()}")
    return arr


def check_labels(labels, n: int) -> np.ndarray:
    """int64 (n,) ground-truth labels from one int or n ints."""
    arr = np.asarray(labels)
    if arr.ndim == 0:
        arr = np.full(n, int(arr))
    if arr.shape != (n,) or arr.dtype.kind not in "iu":
        raise ValueError(f"labels must be one int or {n} ints (one per image), got {arr.dtype} {arr.shape}")
    return arr.astype(np.int64)


def check_step(step, name: str = "step") -> np.ndarray:
    """Fractions 0, step, 2*step, ..., 1 (the last one clipped to 1)."""
    check_fractions([step], name)
    n = math.ceil(1.0 / step - 1e-9)
    return np.minimum(np.arange(n + 1) * float(step), 1.0)


def pixel_ranks(maps: np.ndarray) -> np.ndarray:
    """int (N,H,W): 0 for each map's highest value, 1 for the next, ... (ties in raster order)."""
    n, h, w = maps.shape
    order = np.argsort(-maps.reshape(n, -1), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(h * w)[None].repeat(n, 0), axis=1)
    return ranks.reshape(n, h, w)


def image_groups(n_images: int, per_image: int, batch_size: int):
    """Consecutive ranges of images whose ``per_image`` perturbed copies fill a few model batches."""
    size = max(1, (GROUP_BATCHES * batch_size) // max(per_image, 1))
    for span in spans(n_images, size):
        yield range(span.start, span.stop)


def predict_perturbed(adapter, n_images: int, per_image: int, progress, desc: str, build, jobs=1) -> np.ndarray:
    """(N, per_image, K) probabilities of every image's ``per_image`` perturbed copies.

    ``build(i) -> (fn, args)``: ``fn(*args)`` gives image i's (per_image, H, W, C) copies. The copies of a
    few images (:func:`image_groups`) go through the model together, chunked by ``adapter.batch_size``;
    with ``jobs`` > 1 (or a :class:`~tfxattr.parallel.WorkerPool`) the ``fn`` calls run in worker processes
    (``fn`` a module-level function of NumPy arrays, no TensorFlow), the next group's while the model predicts
    this one's; the same calls either way, so the same numbers."""
    out = np.empty((n_images, per_image, adapter.num_classes), np.float32)
    groups = list(image_groups(n_images, per_image, adapter.batch_size))
    with worker_pool(jobs, n_images) as pool, progress_bar(len(groups), desc, progress) as bar:
        done = pool.ordered(_call, (build(i) for i in range(n_images)),
                            ahead=len(groups[0]) + pool.jobs if groups else None)
        for group in groups:
            stack = np.concatenate([next(done) for _ in group]).astype(np.float32)
            out[group.start:group.stop] = adapter.probabilities(stack).reshape(len(group), per_image, -1)
            bar.update()
    return out


def _call(fn, args):
    return fn(*args)


def over_rows(rows: np.ndarray, size: int, fn, progress=False, desc: str = "") -> np.ndarray:
    """``fn(block)`` for consecutive blocks of at most ``size`` of ``rows`` (e.g. (image, sample) pairs,
    :func:`tfxattr.batching.pairs`), concatenated: memory is bounded by ``size`` rows, whatever their number."""
    out = []
    with progress_bar(-(-len(rows) // size), desc, progress) as bar:
        for block in chunks(rows, size):
            out.append(np.asarray(fn(block)))
            bar.update()
    return np.concatenate(out)


def gather(probabilities: np.ndarray, targets) -> np.ndarray:
    """``probabilities[..., targets]`` per row: (N, P, K), (N,) -> (N, P)."""
    return np.take_along_axis(probabilities, np.asarray(targets).reshape(-1, 1, 1), axis=-1)[..., 0]
