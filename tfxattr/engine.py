"""The batched path engine: (image, point) pairs in chunks of ``batch_size`` through the model.

Memory is bounded by ``batch_size`` (plus one result per image), never by the number of steps.
``evaluator`` is anything with ``values_and_gradients(x, targets)`` and ``values(x, targets)``:
a :class:`~tfxattr.models.ModelAdapter`, or the PAIR ``call_model_function`` wrapper in ``interop``.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from .aggregate import Accumulator, Aggregator
from .progress import progress_bar


def integrate(evaluator, path, aggregator: Aggregator, images, baselines, targets, batch_size: int,
              progress=False, desc="path") -> np.ndarray:
    """Aggregate gradients along ``path`` for every image; returns float32 (N,H,W,C)."""
    plan = path.plan
    n = len(images)
    images = tf.convert_to_tensor(images, tf.float32)
    baselines = tf.convert_to_tensor(baselines, tf.float32)
    targets = np.asarray(targets, np.int32)
    acc = Accumulator(aggregator, n, images.shape[1:], plan.n_points, plan.seg_start, plan.seg_end)

    value_points = plan.value_only_points() if aggregator.needs_values else np.zeros(0, int)
    grad_segments = np.arange(len(plan.seg_point))
    if aggregator.needs_values:  # segments without ends add nothing to IDGI: skip their gradients
        grad_segments = grad_segments[(plan.seg_start >= 0) & (plan.seg_end >= 0)]
    value_pairs = _pairs(n, value_points)
    grad_pairs = _pairs(n, grad_segments)
    total = _n_chunks(len(value_pairs), batch_size) + _n_chunks(len(grad_pairs), batch_size)
    with progress_bar(total, desc, progress) as bar:
        for img, pid in _chunked(value_pairs, batch_size):
            x, b = tf.gather(images, img), tf.gather(baselines, img)
            _bind(path, img)
            acc.add_values(img, pid, evaluator.values(path.points(x, b, pid), targets[img]).numpy())
            bar.update(1)
        for img, seg in _chunked(grad_pairs, batch_size):
            x, b = tf.gather(images, img), tf.gather(baselines, img)
            _bind(path, img)
            pid = plan.seg_point[seg]
            pts = path.points(x, b, pid)
            f, g = evaluator.values_and_gradients(pts, targets[img])
            deltas = path.deltas(x, b, seg, pts) if aggregator.needs_delta else None
            if aggregator.needs_values:
                acc.add_values(img, pid, np.asarray(f))
            acc.add_segments(img, seg, g, deltas)
            bar.update(1)
    return acc.finish()


def _bind(path, image_ids):
    if hasattr(path, "bind"):
        path.bind(image_ids)


def _pairs(n_images: int, ids) -> np.ndarray:
    ids = np.asarray(ids, np.int64)
    img = np.repeat(np.arange(n_images), len(ids))
    return np.stack([img, np.tile(ids, n_images)], 1)


def _n_chunks(n: int, size: int) -> int:
    return -(-n // size)


def _chunked(pairs: np.ndarray, size: int):
    for i in range(0, len(pairs), size):
        block = pairs[i:i + size]
        yield block[:, 0], block[:, 1]
