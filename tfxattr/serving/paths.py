"""Graph-friendly variants of the library's paths (:mod:`tfxattr.paths`): point and segment ids are
tensors (the library's paths index numpy plans with numpy ids). Each variant keeps the library
path's plan (``riemann_plan``, the BlurIG sigmas) and computes the same numbers in the same dtypes.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..blur import gaussian_blur
from ..paths import BlurPath, GuidedPath, StraightLinePath, guided_step


def _column(values):
    return tf.reshape(values, [-1, 1, 1, 1])


class GraphStraightLine:
    """:class:`~tfxattr.paths.StraightLinePath` (IG, Sundararajan et al. 2017, Eq. 1) with tensor ids."""

    def __init__(self, path: StraightLinePath):
        self.plan = path.plan
        self.float64_points = path.float64_points
        self.params32 = tf.constant(self.plan.params, tf.float32)
        self.params64 = tf.constant(self.plan.params, tf.float64)
        self.weights = tf.constant(self.plan.seg_weight, tf.float32)

    def points(self, x, b, point_ids):
        if self.float64_points:  # PAIR's float64 points (rule="saliency")
            a = _column(tf.gather(self.params64, point_ids))
            return tf.cast(tf.cast(b, tf.float64) + a * tf.cast(x - b, tf.float64), tf.float32)
        return b + _column(tf.gather(self.params32, point_ids)) * (x - b)

    def deltas(self, x, b, seg_ids, points=None):
        return _column(tf.gather(self.weights, seg_ids)) * (x - b)


class GraphBlur:
    """:class:`~tfxattr.paths.BlurPath` (BlurIG, Xu et al. 2020, Eq. 4-5) with tensor ids."""

    def __init__(self, path: BlurPath):
        self.plan = path.plan
        self.grad_step = path.grad_step
        self.sigmas = tf.constant(self.plan.params, tf.float64)
        self.seg_point = tf.constant(self.plan.seg_point, tf.int32)
        # the library's float64 weight -w_s / grad_step, rounded once to float32
        self.weights = tf.constant(-self.plan.seg_weight / self.grad_step, tf.float32)

    def points(self, x, b, point_ids):
        return gaussian_blur(x, tf.gather(self.sigmas, point_ids))

    def deltas(self, x, b, seg_ids, points=None):
        sig = tf.gather(self.sigmas, tf.gather(self.seg_point, seg_ids))
        if points is None:
            points = gaussian_blur(x, sig)
        ahead = gaussian_blur(x, sig + self.grad_step)
        return _column(tf.gather(self.weights, seg_ids)) * (ahead - points)


class GraphGuided:
    """:class:`~tfxattr.paths.GuidedPath` (Guided IG, Kapishnikov et al. 2021, Alg. 1) with a tensor state
    ``(x, x_in, x_b, l1_total)`` (flat float64 rows) and dynamic row counts; the step is the library's
    ``guided_step``."""

    def __init__(self, path: GuidedPath):
        self.steps, self.starts = path.steps, 1
        self.fraction, self.max_dist, self.max_iter = path.fraction, path.max_dist, path.max_iter
        self.shape = None

    def start(self, x, b, start_ids):
        self.shape = tf.shape(x)
        rows = tf.shape(x)[0]
        x_in = tf.reshape(tf.cast(x, tf.float64), [rows, -1])
        x_b = tf.reshape(tf.cast(b, tf.float64), [rows, -1])
        return (x_b, x_in, x_b, tf.reduce_sum(tf.abs(x_in - x_b), axis=1))

    def points(self, state):
        return tf.reshape(tf.cast(state[0], tf.float32), self.shape)

    def advance(self, state, gradients, step):
        x, x_in, x_b, l1_total = state
        done = (tf.cast(step, tf.float64) + 1.0) / self.steps
        grad = tf.reshape(tf.cast(gradients, tf.float64), tf.shape(x))
        new = guided_step(x, x_in, x_b, grad, tf.maximum(done - self.max_dist, 0.0),
                          tf.minimum(done + self.max_dist, 1.0), tf.constant(self.fraction, tf.float64),
                          tf.constant(self.max_iter, tf.float64), l1_total * (1.0 - done))
        return (new, x_in, x_b, l1_total)

    def deltas(self, old, new):
        return tf.reshape(new[0] - old[0], self.shape)


class GraphAscent:
    """:class:`~tfxattr.paths.AscentPath` (GGIG, Rahman et al., Alg. 1) with tensor start ids."""

    def __init__(self, path):
        self.steps, self.starts, self.lr = path.steps, path.starts, path.lr
        self.alphas = tf.constant(np.asarray(path.alphas, np.float32))

    def start(self, x, b, start_ids):
        return b + _column(tf.gather(self.alphas, start_ids)) * (x - b)

    def points(self, state):
        return state

    def advance(self, state, gradients, step):
        return state + self.lr * gradients

    def deltas(self, old, new):
        return new - old

