"""Guided IG (Kapishnikov et al., CVPR 2021, Algorithm 1), TF-native and batched over images.

At each of ``steps`` steps the path moves the ``fraction`` of features with the smallest absolute
gradient toward the input, staying within ``max_dist`` (relative L1) of the straight line, until the
L1 distance to the input has shrunk by ``1/steps``. Same rule as PAIR's ``guided_ig_impl`` (float64
path state, gradient taken before each move); every image of a batch advances in lockstep, so a
step costs one batched gradient call instead of one per image.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..aggregate import Accumulator, get_aggregator
from ..progress import progress_bar
from ..checks import one_of, positive_float, positive_int
from .base import Method

EPSILON = 1e-9


@tf.function(input_signature=[tf.TensorSpec((None, None), tf.float64)] * 4
             + [tf.TensorSpec((), tf.float64)] * 4 + [tf.TensorSpec((None,), tf.float64)])
def _guided_step(x, x_in, x_b, grad, alpha_min, alpha_max, fraction, max_iter, l1_target):
    """Move every row of ``x`` (N, D) one Guided IG step; returns the new x."""
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


def guided_ig_path(evaluator, images, baselines, targets, steps, fraction, max_dist, aggregator,
                   progress=False, desc="guided_ig"):
    """Walk the Guided IG path for all images at once, feeding each segment to ``aggregator``."""
    n = len(images)
    shape = images.shape[1:]
    x_in = tf.constant(np.reshape(images, (n, -1)), tf.float64)
    x_b = tf.constant(np.reshape(baselines, (n, -1)), tf.float64)
    x = x_b
    l1_total = tf.reduce_sum(tf.abs(x_in - x_b), axis=1)
    seg = np.arange(steps)
    acc = Accumulator(aggregator, n, shape, steps + 1, seg, seg + 1)
    ids = np.arange(n)
    max_iter = tf.constant(4.0 / fraction + 100.0, tf.float64)
    with progress_bar(steps, desc, progress) as bar:
        for step in range(steps):
            f, g = evaluator.values_and_gradients(tf.reshape(tf.cast(x, tf.float32), (n,) + shape), targets)
            alpha = (step + 1.0) / steps
            x_new = _guided_step(x, x_in, x_b, tf.reshape(tf.cast(g, tf.float64), (n, -1)),
                                 tf.constant(max(alpha - max_dist, 0.0), tf.float64),
                                 tf.constant(min(alpha + max_dist, 1.0), tf.float64),
                                 tf.constant(float(fraction), tf.float64), max_iter,
                                 l1_total * (1.0 - (step + 1.0) / steps))
            if aggregator.needs_values:
                acc.add_values(ids, np.full(n, step), np.asarray(f))
            delta = tf.reshape(x_new - x, (n,) + shape) if aggregator.needs_delta else None
            acc.add_segments(ids, np.full(n, step), g, delta)
            x = x_new
            bar.update(1)
    if aggregator.needs_values:
        acc.add_values(ids, np.full(n, steps),
                       np.asarray(evaluator.values(tf.reshape(tf.cast(x, tf.float32), (n,) + shape), targets)))
    return acc.finish()


class GuidedIG(Method):
    name = "guided_ig"
    summary = "Guided IG: adaptive path that first moves the features with the smallest gradient (fraction, max_dist)"
    defaults = {"aggregator": "riemann", "steps": 200, "fraction": 0.25, "max_dist": 0.02, "baseline": "black",
                "blur_sigma": 20.0}

    def validate(self):
        one_of(self.options["aggregator"], "aggregator", ("riemann", "idgi"))
        positive_int(self.options["steps"], "steps")
        positive_float(self.options["fraction"], "fraction")
        positive_float(self.options["max_dist"], "max_dist", allow_zero=True)
        if self.options["fraction"] > 1 or self.options["max_dist"] > 1:
            raise ValueError(f"fraction and max_dist must lie in [0, 1], got fraction={self.options['fraction']}, "
                             f"max_dist={self.options['max_dist']}")

    def attribute(self, adapter, images, targets, progress=False, seed=None):
        o = self.options
        baselines = self.baselines(adapter, images)
        return guided_ig_path(adapter, images, baselines, targets, o["steps"], o["fraction"], o["max_dist"],
                              get_aggregator(o["aggregator"]), progress=progress, desc=self.name)
