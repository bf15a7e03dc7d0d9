"""Adaptive paths (:class:`~tfxattr.models.contracts.AdaptivePath`, ``adaptive = True``): the next point
depends on the gradient at the current one, so the rows of a chunk walk their steps in lockstep.
:class:`GuidedPath` (Guided IG), :class:`AscentPath` (GGIG).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from ..batching import per_row
from ..models.compat import graph_function

# PAIR's tolerance for "the L1 target is reached" (math.isclose with rel_tol = abs_tol = EPSILON)
EPSILON = 1e-9
# Guided IG's inner loop (Alg. 1, the "while gamma > 1" loop) sends at least a `fraction` of the
# still-free features to their bound per pass, so ~1/fraction passes close a step; PAIR never caps
# it, we cap it at ITERATION_CAP_FACTOR / fraction + ITERATION_CAP_MARGIN passes as a safety net.
ITERATION_CAP_FACTOR = 4.0
ITERATION_CAP_MARGIN = 100.0


@graph_function(input_signature=[tf.TensorSpec((None, None), tf.float64)] * 4
             + [tf.TensorSpec((), tf.float64)] * 4 + [tf.TensorSpec((None,), tf.float64)])
def guided_step(x, x_in, x_b, grad, alpha_min, alpha_max, fraction, max_iter, l1_target):
    """Move every row of ``x`` (N, D) one Guided IG step (Kapishnikov et al. 2021, Alg. 1 lines 6-17).

    Features with the smallest ``|grad|`` (the ``fraction`` quantile, lower interpolation) move
    toward ``x_max = b + alpha_max (x_in - b)``, features behind ``alpha_min`` are pulled up to it,
    until the L1 distance to the input equals ``l1_target``. Returns the new x.
    """
    diff = x_in - x_b
    x_min = x_b + diff * alpha_min
    x_max = x_b + diff * alpha_max
    abs_grad = tf.abs(grad)
    n_feat = tf.shape(x)[1]
    q_index = tf.cast(tf.floor(fraction * tf.cast(n_feat - 1, tf.float64)), tf.int32)
    safe_diff = tf.where(diff != 0, diff, tf.ones_like(diff))
    inf = tf.constant(np.inf, tf.float64)

    def body(i, x, active):
        x_alpha = tf.where(diff != 0, (x - x_b) / safe_diff, alpha_max)
        x1 = tf.where(x_alpha < alpha_min, x_min, x)
        l1_current = tf.reduce_sum(tf.abs(x1 - x_in), axis=1)
        tol = tf.maximum(EPSILON * tf.maximum(tf.abs(l1_target), tf.abs(l1_current)), EPSILON)
        close = tf.abs(l1_target - l1_current) <= tol
        at_max = tf.equal(x1, x_max)
        g = tf.where(at_max, inf, abs_grad)
        threshold = tf.gather(tf.sort(g, axis=1), q_index, axis=1)
        selected = (g <= threshold[:, None]) & ~at_max
        l1_s = tf.reduce_sum(tf.abs(x1 - x_max) * tf.cast(selected, tf.float64), axis=1)
        gamma = tf.where(l1_s > 0, (l1_current - l1_target) / tf.where(l1_s > 0, l1_s, 1.0), inf)
        moved = tf.where(gamma[:, None] > 1.0, x_max, x1 + gamma[:, None] * (x_max - x1))
        x2 = tf.where(selected, moved, x1)
        x_next = tf.where(close[:, None], x1, x2)
        x_out = tf.where(active[:, None], x_next, x)
        return i + 1, x_out, active & ~close & (gamma > 1.0)

    active = tf.ones(tf.shape(x)[:1], tf.bool)
    _, x, _ = tf.while_loop(lambda i, x, a: tf.reduce_any(a) & (tf.cast(i, tf.float64) < max_iter),
                            body, (tf.constant(0), x, active))
    return x


class GuidedState(NamedTuple):
    """Where the rows of one chunk are on the Guided IG path: ``x`` (rows, H, W, C) float64, with the
    inputs, baselines and their L1 distance (Alg. 1 works on flat float64 vectors: :meth:`GuidedPath.advance`
    flattens them). A tuple of tensors, so that a traced walk carries it through a ``tf.while_loop``."""
    x: tf.Tensor
    x_in: tf.Tensor
    x_b: tf.Tensor
    l1_total: tf.Tensor


class GuidedPath:
    """Guided IG (Kapishnikov et al., CVPR 2021, Algorithm 1) as an adaptive path.

    ``steps`` steps from the baseline to the input: at step k the ``fraction`` of features with the
    smallest absolute gradient move toward the input, staying within ``max_dist`` (relative L1) of
    the straight line, until the L1 distance to the input has shrunk to ``1 - (k+1)/steps`` of the
    whole. Same rule as PAIR's ``guided_ig_impl`` (float64 path state, gradient taken before each
    move, the input itself never needs a gradient). One start per image.
    """
    adaptive = True
    starts = 1

    def __init__(self, steps: int, fraction: float = 0.25, max_dist: float = 0.02):
        self.steps = int(steps)
        self.fraction = float(fraction)
        self.max_dist = float(max_dist)
        self.max_iter = ITERATION_CAP_FACTOR / self.fraction + ITERATION_CAP_MARGIN

    def start(self, x, b, start_ids, image_ids) -> GuidedState:
        x_in, x_b = tf.cast(x, tf.float64), tf.cast(b, tf.float64)
        return GuidedState(x_b, x_in, x_b, tf.reduce_sum(tf.abs(_flat(x_in) - _flat(x_b)), axis=1))

    def points(self, state: GuidedState) -> tf.Tensor:
        return tf.cast(state.x, tf.float32)

    def advance(self, state: GuidedState, gradients, step) -> GuidedState:
        done = (tf.cast(step, tf.float64) + 1.0) / self.steps
        grad = _flat(tf.cast(gradients, tf.float64))
        x = guided_step(_flat(state.x), _flat(state.x_in), _flat(state.x_b), grad,
                        tf.maximum(done - self.max_dist, 0.0), tf.minimum(done + self.max_dist, 1.0),
                        tf.constant(self.fraction, tf.float64), tf.constant(self.max_iter, tf.float64),
                        state.l1_total * (1.0 - done))
        return state._replace(x=tf.reshape(x, tf.shape(state.x)))

    def deltas(self, old: GuidedState, new: GuidedState) -> tf.Tensor:
        return new.x - old.x


def _flat(x):
    """(rows, ...) -> (rows, features)."""
    return tf.reshape(x, tf.stack([tf.shape(x)[0], -1]))


class AscentPath:
    """GGIG's paths (Rahman, Lewis, Plis; Algorithm 1): from each of ``starts`` points
    ``b + k/(starts-1) (x - b)`` on the straight line (the input alone when ``starts == 1``), take
    ``steps`` gradient-ascent steps ``x <- x + lr * g``; the gradient is recorded before each step.
    ``lr`` acts on the images as given (pixel space). (GGIG's options: ``steps`` is ``starts`` here, the
    points on the line; ``ascent_steps`` is ``steps``, the engine's lockstep walk.)"""
    adaptive = True

    def __init__(self, starts: int, steps: int, lr: float):
        self.starts = int(starts)
        self.steps = int(steps)
        self.lr = float(lr)
        self.alphas = np.linspace(0.0, 1.0, self.starts) if self.starts > 1 else np.ones(1)

    def start(self, x, b, start_ids, image_ids) -> tf.Tensor:
        return b + per_row(tf.gather(tf.constant(self.alphas, tf.float32), start_ids)) * (x - b)

    def points(self, state) -> tf.Tensor:
        return state

    def advance(self, state, gradients, step: int) -> tf.Tensor:
        return state + self.lr * gradients

    def deltas(self, old, new) -> tf.Tensor:
        return new - old
