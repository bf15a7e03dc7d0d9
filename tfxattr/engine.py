"""The batched path engine: every model call is one chunk of at most ``batch_size`` rows.

A path declares which of two modes it needs (``path.adaptive``; protocols in
:mod:`tfxattr.models.contracts`):

* **fixed** (``adaptive = False``, a :class:`~tfxattr.models.contracts.Path`): rows are (image, point)
  pairs of the path's plan, each chunk computable on its own. Memory is bounded by ``batch_size``
  (plus one result per image), never by the number of steps.
* **adaptive** (``adaptive = True``, an :class:`~tfxattr.models.contracts.AdaptivePath`): the next points
  depend on the last gradients (Guided IG, GGIG). Rows are (image, start point) pairs; each chunk of
  ``batch_size`` rows walks all ``steps`` in lockstep: gradient at the current points -> aggregator
  contribution (with the step's displacement or f-values, as the aggregator needs) -> advance.
  Memory is bounded by ``batch_size``, never by the number of images.

``evaluator`` is any :class:`~tfxattr.models.contracts.GradientEvaluator` (``values_and_gradients``,
``values``): a :class:`~tfxattr.models.ModelAdapter`, or the PAIR ``call_model_function`` wrapper in
:mod:`tfxattr.interop`. All chunking goes through :mod:`tfxattr.batching`.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import batching
from .aggregate import Accumulator, Aggregator
from .progress import progress_bar


def integrate(evaluator, path, aggregator: Aggregator, images, baselines, targets, batch_size: int,
              progress=False, desc="path") -> np.ndarray:
    """Aggregate gradients along ``path`` for every image; returns float32 (N,H,W,C).

    Dispatches on the path's declared ``adaptive`` attribute (False: fixed plan, True: adaptive).
    """
    adaptive = getattr(path, "adaptive", None)
    if adaptive is not True and adaptive is not False:
        raise TypeError(f"{type(path).__name__} must declare adaptive = False (a Path: points fixed by its plan) "
                        f"or adaptive = True (an AdaptivePath: next points from the last gradients)")
    run = _integrate_adaptive if adaptive else _integrate_fixed
    images = tf.convert_to_tensor(images, tf.float32)
    baselines = tf.convert_to_tensor(baselines, tf.float32)
    return run(evaluator, path, aggregator, images, baselines, np.asarray(targets, np.int32), int(batch_size),
               progress, desc)


def _integrate_fixed(evaluator, path, aggregator, images, baselines, targets, batch_size, progress, desc):
    """Fixed path: value-only points first, then every (image, segment) pair, in chunks."""
    plan = path.plan
    n = len(images)
    acc = Accumulator(aggregator, n, images.shape[1:], plan.n_points, plan.seg_start, plan.seg_end)

    value_points = plan.value_only_points() if aggregator.needs_values else np.zeros(0, int)
    grad_segments = np.arange(len(plan.seg_point))
    if aggregator.needs_values:  # segments without ends add nothing to IDGI: skip their gradients
        grad_segments = grad_segments[(plan.seg_start >= 0) & (plan.seg_end >= 0)]
    value_rows = batching.pairs(n, value_points)
    grad_rows = batching.pairs(n, grad_segments)
    total = batching.count(len(value_rows), batch_size) + batching.count(len(grad_rows), batch_size)
    with progress_bar(total, desc, progress) as bar:
        for block in batching.chunks(value_rows, batch_size):
            img, pid = block[:, 0], block[:, 1]
            x, b = tf.gather(images, img), tf.gather(baselines, img)
            acc.add_values(img, pid, evaluator.values(path.points(x, b, pid, img), targets[img]).numpy())
            bar.update(1)
        for block in batching.chunks(grad_rows, batch_size):
            img, seg = block[:, 0], block[:, 1]
            x, b = tf.gather(images, img), tf.gather(baselines, img)
            pid = plan.seg_point[seg]
            pts = path.points(x, b, pid, img)
            f, g = evaluator.values_and_gradients(pts, targets[img])
            deltas = path.deltas(x, b, seg, img, pts) if aggregator.needs_delta else None
            if aggregator.needs_values:
                acc.add_values(img, pid, np.asarray(f))
            acc.add_segments(img, seg, g, deltas)
            bar.update(1)
    return acc.finish()


def _integrate_adaptive(evaluator, path, aggregator, images, baselines, targets, batch_size, progress, desc):
    """Adaptive path: chunks of (image, start) rows, each walking all steps in lockstep.

    Row (image, start r) at step k is value point ``r (steps + 1) + k``; its segment ``r steps + k``
    runs from that point to the next, the gradient taken at its start (left point).
    """
    n, steps, starts = len(images), int(path.steps), int(path.starts)
    seg = np.arange(starts * steps)
    first = seg // steps * (steps + 1) + seg % steps
    acc = Accumulator(aggregator, n, images.shape[1:], starts * (steps + 1), first, first + 1)
    # the last step's advance only feeds a displacement or an end value
    advance_last = aggregator.needs_delta or aggregator.needs_values
    rows = batching.pairs(n, np.arange(starts))
    calls = steps + (1 if aggregator.needs_values else 0)
    with progress_bar(batching.count(len(rows), batch_size) * calls, desc, progress) as bar:
        for block in batching.chunks(rows, batch_size):
            img, start = block[:, 0], block[:, 1]
            t = targets[img]
            state = path.start(tf.gather(images, img), tf.gather(baselines, img), start, img)
            for k in range(steps):
                f, g = evaluator.values_and_gradients(path.points(state), t)
                if aggregator.needs_values:
                    acc.add_values(img, start * (steps + 1) + k, np.asarray(f))
                new = path.advance(state, g, k) if advance_last or k + 1 < steps else None
                deltas = path.deltas(state, new) if aggregator.needs_delta else None
                acc.add_segments(img, start * steps + k, g, deltas)
                state = new
                bar.update(1)
            if aggregator.needs_values:
                acc.add_values(img, start * (steps + 1) + steps, np.asarray(evaluator.values(path.points(state), t)))
                bar.update(1)
    return acc.finish()


def values_along(evaluator, path, images, baselines, targets, batch_size: int) -> np.ndarray:
    """``f`` at every point of a fixed ``path``'s plan for every image: float64 (N, points), forward passes
    only, in chunks of ``batch_size`` (a coarse look along the path, e.g. IG's adaptive schedule)."""
    images = tf.convert_to_tensor(images, tf.float32)
    baselines = tf.convert_to_tensor(baselines, tf.float32)
    targets = np.asarray(targets, np.int32)
    out = np.zeros((len(images), path.plan.n_points), np.float64)
    for block in batching.chunks(batching.pairs(len(images), np.arange(path.plan.n_points)), int(batch_size)):
        img, pid = block[:, 0], block[:, 1]
        x, b = tf.gather(images, img), tf.gather(baselines, img)
        out[img, pid] = np.asarray(evaluator.values(path.points(x, b, pid, img), targets[img]))
    return out
