"""The in-graph engine: the path loop, the aggregator and the chunking as ``tf.while_loop``s.

The library engine (:mod:`tfxattr.engine`) drives chunks from Python and keeps per-image results in
numpy; a SavedModel must hold all of it in its graph. Everything here is traced inside a
``tf.function``: rows are (image, point) or (image, segment) pairs, cut into chunks of
``batch_size`` rows by :func:`chunk_loop` (one model call per chunk, ``parallel_iterations=1`` so
two chunks never sit in memory at once), and the per-image result is folded in with
``tensor_scatter_nd_add``. Memory is bounded by ``batch_size`` (plus one result per image),
whatever the number of steps.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..batching import SEQUENTIAL, chunk_loop, chunk_map, relaxed  # noqa: F401  (used as graph.chunk_map etc.)


def explained_fn(adapter):
    """``(x, targets) -> f_c(x)``: the adapter's differentiable function (preprocessing inside)."""
    return lambda x, t: tf.cast(adapter.objective.explained(adapter._raw(x), t), tf.float32)


def values_and_gradients_fn(adapter):
    """``(x, targets) -> (f_c(x), df_c/dx)`` from one forward pass (as ``ModelAdapter.values_and_gradients``)."""
    f = explained_fn(adapter)

    def vg(x, t):
        with tf.GradientTape() as tape:
            tape.watch(x)
            v = f(x, t)
        return v, tape.gradient(v, x)
    return vg


# -- fixed paths ------------------------------------------------------------------------------------
def check_carry(plan, segments: np.ndarray, value_points: np.ndarray, batch_size: int):
    """Raise unless every segment's end values arrive at most one chunk after its gradient.

    In row order (one image's ``segments`` in turn), an end value either comes from a value-only
    pass (done first) or from the gradient pass of another segment; the graph engine carries one
    chunk of contributions, so that segment must lie at most ``batch_size`` rows later.
    """
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
                                 f"than batch_size={batch_size} rows later; the in-graph engine cannot export it")


def integrate_fixed(adapter, path, aggregator, images, baselines, targets, batch_size: int):
    """Aggregate gradients along a fixed ``path`` (a graph path: tensor ids) for every image, in the graph.

    Same rows as :func:`tfxattr.engine.integrate`: f-value aggregators (IDGI) first evaluate the
    value-only points, then every (image, segment) pair, image-major, in chunks of ``batch_size``;
    the f-values of the gradient passes fill the value table as they come. A segment whose end
    value is not known yet (its end is the next segment's gradient point, in the next chunk) is
    carried to the next chunk. Returns float32 attributions shaped like ``images``.
    """
    plan = path.plan
    needs_values, needs_delta = aggregator.needs_values, aggregator.needs_delta
    segments = np.arange(len(plan.seg_point))
    value_points = np.zeros(0, np.int64)
    if needs_values:
        segments = segments[plan.has_ends]
        value_points = plan.value_only_points()
        check_carry(plan, segments, set(value_points.tolist()), batch_size)
    f_fn, vg_fn = explained_fn(adapter), values_and_gradients_fn(adapter)
    n = tf.shape(images)[0]
    seg_const = tf.constant(segments, tf.int32)
    seg_point = tf.constant(plan.seg_point, tf.int32)
    seg_start = tf.constant(plan.seg_start, tf.int32)
    seg_end = tf.constant(plan.seg_end, tf.int32)
    result = tf.zeros(tf.shape(images), tf.float64)
    table = tf.fill(tf.stack([n, plan.n_points]), tf.constant(np.nan, tf.float64))

    if len(value_points):
        vp = tf.constant(value_points, tf.int32)

        def value_body(start, stop, table):
            r = tf.range(start, stop)
            img, pid = r // len(value_points), tf.gather(vp, r % len(value_points))
            x, b = tf.gather(images, img), tf.gather(baselines, img)
            f = f_fn(path.points(x, b, pid), tf.gather(targets, img))
            return (tf.tensor_scatter_nd_update(table, tf.stack([img, pid], 1), tf.cast(f, tf.float64)),)
        (table,) = chunk_loop(n * len(value_points), batch_size, value_body, (table,))

    feature = tf.shape(images)[1:]
    carry = (tf.zeros(tf.concat([[0], feature], 0), tf.float64), tf.zeros([0], tf.int32), tf.zeros([0], tf.int32))

    def resolve(table, result, u, img, seg):
        """Add the rows of ``u`` whose two end values are known; return the others."""
        f0 = tf.gather_nd(table, tf.stack([img, tf.gather(seg_start, seg)], 1))
        f1 = tf.gather_nd(table, tf.stack([img, tf.gather(seg_end, seg)], 1))
        ok = ~(tf.math.is_nan(f0) | tf.math.is_nan(f1))
        scale = tf.where(ok, f1 - f0, tf.zeros_like(f0))
        result = tf.tensor_scatter_nd_add(result, img[:, None], u * tf.reshape(scale, [-1, 1, 1, 1]))
        return result, (tf.boolean_mask(u, ~ok), tf.boolean_mask(img, ~ok), tf.boolean_mask(seg, ~ok))

    def grad_body(start, stop, table, result, cu, cimg, cseg):
        r = tf.range(start, stop)
        img, seg = r // len(segments), tf.gather(seg_const, r % len(segments))
        pid = tf.gather(seg_point, seg)
        x, b = tf.gather(images, img), tf.gather(baselines, img)
        pts = path.points(x, b, pid)
        f, g = vg_fn(pts, tf.gather(targets, img))
        deltas = path.deltas(x, b, seg, pts) if needs_delta else None
        u = aggregator.contribution(g, deltas)
        if not needs_values:
            return table, tf.tensor_scatter_nd_add(result, img[:, None], u), cu, cimg, cseg
        table = tf.tensor_scatter_nd_update(table, tf.stack([img, pid], 1), tf.cast(f, tf.float64))
        # the carried rows get their end values from this chunk (check_carry guarantees it)
        result, (cu, cimg, cseg) = resolve(table, result, tf.concat([cu, u], 0), tf.concat([cimg, img], 0),
                                           tf.concat([cseg, seg], 0))
        return table, result, cu, cimg, cseg

    table, result, cu, cimg, cseg = chunk_loop(n * len(segments), batch_size, grad_body,
                                               (table, result) + carry)
    if needs_values:
        result, (left, _, _) = resolve(table, result, cu, cimg, cseg)
        with tf.control_dependencies([tf.debugging.assert_equal(
                tf.shape(left)[0], 0, message="path segments never received their end values")]):
            result = tf.identity(result)
    return tf.cast(result, tf.float32)


# -- adaptive paths ---------------------------------------------------------------------------------
def integrate_adaptive(evaluator_vg, evaluator_f, path, aggregator, images, baselines, targets, batch_size: int):
    """Adaptive ``path`` (a graph path) in the graph, as ``tfxattr.engine._integrate_adaptive``: chunks of
    (image, start) rows walk all steps in lockstep (an inner ``tf.while_loop`` over steps); IDGI's
    f-values come from the same passes, the last point's from one value-only pass.

    ``evaluator_vg(x, t) -> (f, g)``, ``evaluator_f(x, t) -> f``. Returns float32 attributions."""
    n, steps, starts = tf.shape(images)[0], int(path.steps), int(path.starts)
    needs_values, needs_delta = aggregator.needs_values, aggregator.needs_delta
    maximum = aggregator.reduce == "max"
    fill = -np.inf if maximum else 0.0
    result = tf.fill(tf.shape(images), tf.constant(fill, tf.float64))

    def chunk_body(begin, stop, result):
        r = tf.range(begin, stop)
        img, start = r // starts, r % starts
        x, b, t = tf.gather(images, img), tf.gather(baselines, img), tf.gather(targets, img)
        state = path.start(x, b, start)
        acc = tf.fill(tf.shape(x), tf.constant(fill, tf.float64))

        def step_body(k, state, acc, f_prev, u_prev):
            f, g = evaluator_vg(path.points(state), t)
            f = tf.reshape(f, [-1])
            new = path.advance(state, g, k)
            deltas = path.deltas(state, new) if needs_delta else None
            u = aggregator.contribution(g, deltas)
            if needs_values:  # the previous step's segment ends here
                acc = acc + u_prev * tf.reshape(tf.cast(f, tf.float64) - f_prev, [-1, 1, 1, 1])
                return k + 1, new, acc, tf.cast(f, tf.float64), u
            acc = tf.maximum(acc, u) if maximum else acc + u
            return k + 1, new, acc, f_prev, u_prev

        # step 0 has no previous segment: its carried contribution is zero
        init = (tf.constant(0), state, acc, tf.zeros(tf.shape(x)[:1], tf.float64), tf.zeros(tf.shape(x), tf.float64))
        loop = tf.while_loop(lambda k, *s: k < steps, step_body, init, shape_invariants=relaxed(init),
                             parallel_iterations=SEQUENTIAL)
        _, state, acc, f_prev, u_prev = loop
        if needs_values:
            f_end = tf.cast(evaluator_f(path.points(state), t), tf.float64)
            acc = acc + u_prev * tf.reshape(f_end - f_prev, [-1, 1, 1, 1])
        if maximum:
            return (tf.tensor_scatter_nd_max(result, img[:, None], acc),)
        return (tf.tensor_scatter_nd_add(result, img[:, None], acc),)

    (result,) = chunk_loop(n * starts, batch_size, chunk_body, (result,))
    if maximum:
        result = tf.where(tf.math.is_finite(result), result, tf.zeros_like(result))
    return tf.cast(result, tf.float32)
