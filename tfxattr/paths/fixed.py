"""Fixed paths (:class:`~tfxattr.models.contracts.Path`, ``adaptive = False``): a discrete plan
(:class:`~tfxattr.paths.rules.PathPlan`) plus a way to make its points and segment displacements for any
chunk of (image, point) pairs, so that a whole path never has to sit in memory. Points are ordered from the
baseline (start) to the input (end). :class:`StraightLinePath` (IG), :class:`BlurPath` (BlurIG),
:class:`ArrayPath` (a user-given array); IG's per-image schedule is :class:`~tfxattr.paths.schedules.ScheduledLinePath`.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..batching import per_row
from ..blur import gaussian_blur
from ..checks import one_of
from .rules import PathPlan, riemann_plan


class StraightLinePath:
    """``x(a) = b + a (x - b)``, the IG path (Sundararajan et al. 2017, Eq. 1); segment displacement
    ``w_s (x - b)``.

    With ``rule="saliency"`` the points are built as PAIR's ``IntegratedGradients.GetMask`` builds
    them (``saliency/core/integrated_gradients.py``): ``x_diff = x - b`` in float32, then
    ``b + alpha * x_diff`` in float64 (``alpha`` a float64 ``linspace`` value), rounded once to float32
    when the model is called. The other rules compute ``b + a (x - b)`` in float32; the two can differ
    in the last bit of a pixel, which flips a ReLU whose pre-activation sits at that boundary.
    """
    adaptive = False

    def __init__(self, steps: int, rule: str = "left"):
        self.plan = riemann_plan(steps, rule)
        self.rule = rule
        self.float64_points = rule == "saliency"

    def points(self, x, b, point_ids, image_ids):
        if self.float64_points:
            a = per_row(tf.gather(tf.constant(self.plan.params, tf.float64), point_ids))
            return tf.cast(tf.cast(b, tf.float64) + a * tf.cast(x - b, tf.float64), tf.float32)
        return b + per_row(tf.gather(tf.constant(self.plan.params, tf.float32), point_ids)) * (x - b)

    def deltas(self, x, b, seg_ids, image_ids, points=None):
        return per_row(tf.gather(tf.constant(self.plan.seg_weight, tf.float32), seg_ids)) * (x - b)


# where BlurIG takes each segment's gradient: at its end nearer the input (PAIR's BlurIG) or at its
# end nearer the fully blurred image (IDGI's Algorithm 1 read with the blurred image as the baseline)
GRADIENT_SIDES = ("input_side", "blurred_side")


class BlurPath:
    """BlurIG (Xu et al., CVPR 2020, Eq. 4-5) as PAIR implements it: blur levels
    ``sigma_i = i*blur_sigma/steps`` (PAIR's ``max_sigma``; or their square roots), value point ``i`` = the
    input blurred with ``sigma_i``; segment ``s`` runs from ``sigma_{s+1}`` (start, blurred side) to ``sigma_s``
    (end, input side) with displacement ``-(sigma_{s+1} - sigma_s) * d blur / d sigma``, the derivative a
    forward difference with ``grad_step`` at the gradient point.

    ``gradient_at`` picks the gradient point of each segment:

    * ``"input_side"``: ``sigma_s`` (PAIR's ``BlurIG.GetMask``: gradients at ``sigma_0 .. sigma_{steps-1}``,
      the fully blurred image never gets a gradient). Its first segment's derivative at ``sigma_0 = 0``
      is zero (d blur / d sigma = sigma * Laplacian; for ``grad_step < 1/8`` the kernel at ``grad_step``
      has radius 0, so the forward difference is exactly zero).
    * ``"blurred_side"``: ``sigma_{s+1}``, the segment's start on the path from the blurred image to the
      input, i.e. IDGI's Algorithm 1 (Yang et al. 2023, lines 3-4: ``g`` at ``x_j``, ``d = f(x_{j+1}) -
      f(x_j)``) with the blurred image as the baseline; the input never gets a gradient. With the
      Riemann sum this is the left-point sum of the same integral walked from the blurred end.

    Ordered from the fully blurred image (start, value point ``steps``) to the input (value point 0).
    """
    adaptive = False

    def __init__(self, steps: int, blur_sigma: float = 50.0, grad_step: float = 0.01, sqrt: bool = False,
                 gradient_at: str = "input_side"):
        one_of(gradient_at, "gradient_at", GRADIENT_SIDES)
        i = np.arange(steps + 1, dtype=np.float64)
        self.sigmas = np.sqrt(i * blur_sigma / steps) if sqrt else i * blur_sigma / steps
        self.grad_step = float(grad_step)
        self.gradient_at = gradient_at
        s = np.arange(steps)
        grad_point = s if gradient_at == "input_side" else s + 1
        self.plan = PathPlan(self.sigmas, grad_point, s + 1, s, np.diff(self.sigmas))

    def points(self, x, b, point_ids, image_ids):
        return gaussian_blur(x, tf.gather(tf.constant(self.plan.params, tf.float64), point_ids))

    def deltas(self, x, b, seg_ids, image_ids, points=None):
        sig = tf.gather(tf.constant(self.plan.params[self.plan.seg_point], tf.float64), seg_ids)
        if points is None:
            points = gaussian_blur(x, sig)
        ahead = gaussian_blur(x, sig + self.grad_step)
        # the float64 weight -w_s / grad_step, rounded once to float32
        w = tf.gather(tf.constant(-self.plan.seg_weight / self.grad_step, tf.float32), seg_ids)
        return per_row(w) * (ahead - points)


class ArrayPath:
    """A user-given path: ``points`` of shape (S+1, H, W, C) shared by all images, or (N, S+1, H, W, C),
    ordered from baseline to input; left-point gradients, displacement ``x_{s+1} - x_s``.
    Rows index the per-image array by their ``image_ids``."""
    adaptive = False

    def __init__(self, points, n_images: int, image_shape):
        arr = np.asarray(points.numpy() if hasattr(points, "numpy") else points, dtype=np.float32)
        if arr.ndim == 4:
            arr = np.broadcast_to(arr[None], (n_images,) + arr.shape)
        if arr.ndim != 5 or arr.shape[0] != n_images or arr.shape[2:] != tuple(image_shape):
            raise ValueError(f"path must be an array of images (S+1, H, W, C) or (N, S+1, H, W, C) with "
                             f"(H, W, C) = {tuple(image_shape)} and N = {n_images}, got shape {arr.shape}")
        if arr.shape[1] < 2:
            raise ValueError(f"path needs at least 2 points (baseline and input), got {arr.shape[1]}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("path contains non-finite values")
        self.array = arr
        steps = arr.shape[1] - 1
        s = np.arange(steps)
        self.plan = PathPlan(np.arange(steps + 1, dtype=np.float64), s, s, s + 1, np.ones(steps))

    def points(self, x, b, point_ids, image_ids):
        return tf.gather_nd(tf.constant(self.array), tf.stack([image_ids, point_ids], 1))

    def deltas(self, x, b, seg_ids, image_ids, points=None):
        array = tf.constant(self.array)
        ends = [tf.stack([image_ids, tf.gather(tf.constant(ids, tf.int32), seg_ids)], 1)
                for ids in (self.plan.seg_end, self.plan.seg_point)]
        return tf.gather_nd(array, ends[0]) - tf.gather_nd(array, ends[1])
