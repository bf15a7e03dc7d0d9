"""The batched path engine: every model call is one chunk of at most ``batch_size`` rows.

One implementation for every door: :func:`integrate` is TensorFlow code over chunks of rows. Called
eagerly (``explain()``, ``compute()``, ``tfxattr eval``) its loops are Python loops with a progress bar
and the evaluator chunks and splits over a ``strategy``; traced inside a ``tf.function`` (an exported
SavedModel, ``explainer_model``) the same calls build ``tf.while_loop`` loops (:mod:`tfxattr.batching`).

A path declares which of two modes it needs (``path.adaptive``; protocols in
:mod:`tfxattr.models.contracts`):

* **fixed** (``adaptive = False``, a :class:`~tfxattr.models.contracts.Path`): rows are (image, point)
  pairs of the path's plan, image-major, each chunk computable on its own. An aggregator that needs
  f-values (IDGI) first evaluates the points no gradient pass reaches, then every (image, segment)
  pair; a segment whose end value arrives with a later chunk (the next segment's gradient point) is
  carried to it. Memory is bounded by ``batch_size`` (plus one result and one value row per image),
  never by the number of steps.
* **adaptive** (``adaptive = True``, an :class:`~tfxattr.models.contracts.AdaptivePath`): the next points
  depend on the last gradients (Guided IG, GGIG). Rows are (image, start point) pairs; each chunk of
  ``batch_size`` rows walks all ``steps`` in lockstep: gradient at the current points -> aggregator
  contribution (with the step's displacement, or the f-values at both ends) -> advance.

What the aggregator needs is read from its declaration (``needs_values``, ``needs_delta``, ``reduce``),
never from its name. ``evaluator`` is any :class:`~tfxattr.models.contracts.GradientEvaluator`.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from .. import batching
from ..batching import per_row, rows
from ..progress import progress_bar
from .aggregators import Aggregator


def integrate(evaluator, path, aggregator: Aggregator, images, baselines, targets, batch_size: int,
              progress=False, desc="path"):
    """Aggregate gradients along ``path`` for every image: float32 (N,H,W,C), numpy when eager, a tensor
    when traced. Dispatches on the path's declared ``adaptive`` attribute."""
    adaptive = getattr(path, "adaptive", None)
    if adaptive is not True and adaptive is not False:
        raise TypeError(f"{type(path).__name__} must declare adaptive = False (a Path: points fixed by its plan) "
                        f"or adaptive = True (an AdaptivePath: next points from the last gradients)")
    run = _integrate_adaptive if adaptive else _integrate_fixed
    images, targets = batching.as_rows(images, targets)
    baselines = tf.convert_to_tensor(baselines, tf.float32)
    return batching.finish(run(evaluator, path, aggregator, images, baselines, targets, int(batch_size), progress,
                               desc))


def fixed_rows(plan, aggregator):
    """``(segments, value_points)``: the segments whose gradients the aggregator uses (all, or those with
    both ends when it scales by f-differences) and the points evaluated for their value alone."""
    segments = np.arange(len(plan.seg_point))
    if not aggregator.needs_values:
        return segments, np.zeros(0, np.int64)
    return segments[plan.has_ends], plan.value_only_points()


def check_carry(plan, segments: np.ndarray, value_points, batch_size: int):
    """Raise unless every segment's end values arrive at most ``batch_size`` rows after its gradient.

    In row order (one image's ``segments`` in turn) an end value comes from the value-only pass (done
    first) or from the gradient pass of another segment; rows waiting for a value are carried, so a
    path whose ends come later would hold an unbounded carry."""
    value_points = set(np.asarray(value_points).tolist())
    where = {}
    for i, s in enumerate(segments):
        where.setdefault(int(plan.seg_point[s]), i)
    for i, s in enumerate(segments):
        for p in (int(plan.seg_start[s]), int(plan.seg_end[s])):
            if p in value_points:
                continue
            j = where.get(p)
            if j is None or j - i > batch_size:
                raise ValueError(f"this path's segment {int(s)} needs the value at point {p}, which arrives more "
                                 f"than batch_size={batch_size} rows later (or never): give every segment end a "
                                 "gradient point soon after it, or evaluate it as a value-only point")


def _integrate_fixed(evaluator, path, aggregator, images, baselines, targets, batch_size, progress, desc):
    plan = path.plan
    needs_values, needs_delta = aggregator.needs_values, aggregator.needs_delta
    segments, value_points = fixed_rows(plan, aggregator)
    if needs_values:
        check_carry(plan, segments, value_points, batch_size)
    n = rows(images)
    n_seg, n_val = len(segments), len(value_points)
    seg_ids = tf.constant(segments, tf.int32)
    seg_point = tf.constant(plan.seg_point, tf.int32)
    seg_start = tf.constant(plan.seg_start, tf.int32)
    seg_end = tf.constant(plan.seg_end, tf.int32)
    result = tf.zeros(tf.shape(images), tf.float64)
    # f-values per (image, point) and whether each is known (a NaN value is a value, not a gap)
    table = tf.zeros(tf.stack([n, plan.n_points]), tf.float64)
    known = tf.zeros(tf.stack([n, plan.n_points]), tf.bool)

    def record(table, known, img, pid, f):
        where = tf.stack([img, pid], 1)
        return (tf.tensor_scatter_nd_update(table, where, tf.cast(tf.reshape(f, [-1]), tf.float64)),
                tf.tensor_scatter_nd_update(known, where, tf.ones_like(img, tf.bool)))

    def value_body(start, stop, table, known):
        r = tf.range(start, stop)
        img, pid = r // n_val, tf.gather(tf.constant(value_points, tf.int32), r % n_val)
        x, b = tf.gather(images, img), tf.gather(baselines, img)
        f = evaluator.values(path.points(x, b, pid, img), tf.gather(targets, img))
        return record(table, known, img, pid, f)

    def settle(table, known, result, u, img, seg):
        """Add the rows of ``u`` whose two end values are known; return the result and the other rows (few:
        the ones whose end is the next chunk's first gradient point), the only ones copied."""
        ends = [tf.stack([img, tf.gather(p, seg)], 1) for p in (seg_start, seg_end)]
        ok = tf.gather_nd(known, ends[0]) & tf.gather_nd(known, ends[1])
        scale = tf.where(ok, tf.gather_nd(table, ends[1]) - tf.gather_nd(table, ends[0]), 0.0)
        result = tf.tensor_scatter_nd_add(result, img[:, None], u * per_row(scale))
        return result, tf.boolean_mask(u, ~ok), tf.boolean_mask(img, ~ok), tf.boolean_mask(seg, ~ok)

    def grad_body(start, stop, table, known, result, cu, cimg, cseg):
        r = tf.range(start, stop)
        img, seg = r // n_seg, tf.gather(seg_ids, r % n_seg)
        pid = tf.gather(seg_point, seg)
        x, b = tf.gather(images, img), tf.gather(baselines, img)
        pts = path.points(x, b, pid, img)
        f, g = evaluator.values_and_gradients(pts, tf.gather(targets, img))
        deltas = path.deltas(x, b, seg, img, pts) if needs_delta else None
        u = aggregator.contribution(g, deltas)
        if not needs_values:
            return table, known, tf.tensor_scatter_nd_add(result, img[:, None], u), cu, cimg, cseg
        table, known = record(table, known, img, pid, f)
        # the carried rows and this chunk's rows are settled apart: only the few left over are concatenated
        result, cu, cimg, cseg = settle(table, known, result, cu, cimg, cseg)
        result, u, img, seg = settle(table, known, result, u, img, seg)
        return table, known, result, tf.concat([cu, u], 0), tf.concat([cimg, img], 0), tf.concat([cseg, seg], 0)

    carry = (tf.zeros(tf.concat([[0], tf.shape(images)[1:]], 0), tf.float64), tf.zeros([0], tf.int32),
             tf.zeros([0], tf.int32))
    with progress_bar(_chunks(n, n_val, batch_size) + _chunks(n, n_seg, batch_size), desc, progress) as bar:
        if n_val:
            table, known = batching.chunk_loop(n * n_val, batch_size, value_body, (table, known), bar)
        table, known, result, cu, _, _ = batching.chunk_loop(n * n_seg, batch_size, grad_body,
                                                             (table, known, result) + carry, bar)
    if needs_values:
        with tf.control_dependencies([tf.debugging.assert_equal(
                tf.shape(cu)[0], 0, message="path segments never received their end values")]):
            result = tf.identity(result)
    return result


def _chunks(n, per_image: int, batch_size: int) -> int:
    """Chunks of a row loop, for the progress bar (0 when traced: there is no bar)."""
    return batching.count(n * per_image, batch_size) if isinstance(n, int) else 0


def _integrate_adaptive(evaluator, path, aggregator, images, baselines, targets, batch_size, progress, desc):
    """Chunks of (image, start) rows walk all steps in lockstep. The segment of step k runs from the point of
    step k to that of step k+1, its gradient taken at its start; with f-value aggregators its contribution
    is settled at step k+1 (or by one value-only pass after the last step)."""
    n, steps, starts = rows(images), int(path.steps), int(path.starts)
    needs_values, needs_delta = aggregator.needs_values, aggregator.needs_delta
    maximum = aggregator.reduce == "max"
    fill = -np.inf if maximum else 0.0
    result = tf.fill(tf.shape(images), tf.constant(fill, tf.float64))
    per_chunk = steps + (1 if needs_values else 0)

    def chunk_body(begin, stop, result, bar=None):
        r = tf.range(begin, stop)
        img, start = r // starts, r % starts
        x, b, t = tf.gather(images, img), tf.gather(baselines, img), tf.gather(targets, img)
        acc = tf.fill(tf.shape(x), tf.constant(fill, tf.float64))

        def step(k, state, acc, f_prev, u_prev):
            f, g = evaluator.values_and_gradients(path.points(state), t)
            f = tf.cast(tf.reshape(f, [-1]), tf.float64)
            new = path.advance(state, g, k)
            u = aggregator.contribution(g, path.deltas(state, new) if needs_delta else None)
            if needs_values:  # the previous step's segment ends here (step 0 carries a zero contribution)
                return new, acc + u_prev * per_row(f - f_prev), f, u
            return new, tf.maximum(acc, u) if maximum else acc + u, f_prev, u_prev

        init = (path.start(x, b, start, img), acc, tf.zeros(tf.shape(x)[:1], tf.float64),
                tf.zeros(tf.shape(x), tf.float64))
        state, acc, f_prev, u_prev = batching.step_loop(steps, step, init, bar)
        if needs_values:
            f_end = tf.cast(tf.reshape(evaluator.values(path.points(state), t), [-1]), tf.float64)
            acc = acc + u_prev * per_row(f_end - f_prev)
            if bar is not None:
                bar.update(1)
        update = tf.tensor_scatter_nd_max if maximum else tf.tensor_scatter_nd_add
        return (update(result, img[:, None], acc),)

    with progress_bar(_chunks(n, starts, batch_size) * per_chunk, desc, progress) as bar:
        eager = tf.executing_eagerly()
        (result,) = batching.chunk_loop(n * starts, batch_size,
                                        lambda b0, b1, res: chunk_body(b0, b1, res, bar if eager else None),
                                        (result,))
    if maximum:
        result = tf.where(tf.math.is_finite(result), result, tf.zeros_like(result))
    return result


def values_along(evaluator, path, images, baselines, targets, batch_size: int) -> np.ndarray:
    """``f`` at every point of a fixed ``path``'s plan for every image: float64 (N, points), forward passes
    only, in chunks of ``batch_size`` (a coarse look along the path, e.g. IG's adaptive schedule)."""
    images = tf.convert_to_tensor(images, tf.float32)
    baselines = tf.convert_to_tensor(baselines, tf.float32)
    targets = tf.convert_to_tensor(targets, tf.int32)
    n, points = rows(images), path.plan.n_points

    def body(r):
        img, pid = r // points, r % points
        x, b = tf.gather(images, img), tf.gather(baselines, img)
        return (tf.cast(evaluator.values(path.points(x, b, pid, img), tf.gather(targets, img)), tf.float64),)

    (f,) = batching.chunk_map(body, [tf.float64], n * points, batch_size, tf.range(n * points))
    return np.asarray(tf.reshape(f, [n, points]))
