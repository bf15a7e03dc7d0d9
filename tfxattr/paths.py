"""Paths: which points between a baseline and the input are evaluated.

A path is a discrete plan (:class:`PathPlan`) plus a way to make its points and segment
displacements for any chunk of (image, point) pairs, so that a whole path never has to sit in
memory. Points are ordered from the baseline (start) to the input (end).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .blur import gaussian_blur

RULES = ("left", "right", "midpoint", "trapezoid", "saliency")


@dataclass
class PathPlan:
    """``params[p]``: the path parameter of point p. Segment s takes its gradient at point
    ``seg_point[s]``, spans value points ``seg_start[s] -> seg_end[s]`` (-1: no ends), weight ``seg_weight[s]``."""
    params: np.ndarray
    seg_point: np.ndarray
    seg_start: np.ndarray
    seg_end: np.ndarray
    seg_weight: np.ndarray

    @property
    def n_points(self):
        return len(self.params)

    def value_only_points(self):
        """Points whose f-value IDGI needs but whose gradient is never taken."""
        ends = np.concatenate([self.seg_start, self.seg_end])
        ends = np.unique(ends[ends >= 0])
        return np.setdiff1d(ends, self.seg_point)


def riemann_plan(steps: int, rule: str) -> PathPlan:
    """Parameters in [0, 1] for ``steps`` segments under a Riemann ``rule``.

    ``"saliency"`` reproduces PAIR's ``IntegratedGradients``: ``linspace(0, 1, steps)``, every
    gradient weighted ``1/steps`` (endpoint-inclusive: neither a left nor a right sum).
    """
    s = np.arange(steps)
    k = np.arange(steps + 1) / steps
    w = np.full(steps, 1.0 / steps)
    if rule == "left":
        return PathPlan(k, s, s, s + 1, w)
    if rule == "right":
        return PathPlan(k, s + 1, s, s + 1, w)
    if rule == "midpoint":
        return PathPlan(np.concatenate([k, (s + 0.5) / steps]), steps + 1 + s, s, s + 1, w)
    if rule == "trapezoid":
        p = np.arange(steps + 1)
        wt = np.full(steps + 1, 1.0 / steps)
        wt[[0, -1]] = 0.5 / steps
        none = np.full(steps + 1, -1)
        return PathPlan(k, p, none, none, wt)
    if rule == "saliency":
        p = np.arange(steps)
        end = np.where(p + 1 < steps, p + 1, -1)
        start = np.where(p + 1 < steps, p, -1)
        return PathPlan(np.linspace(0.0, 1.0, steps), p, start, end, w)
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")


class StraightLinePath:
    """``x(a) = b + a (x - b)``, the IG path; segment displacement ``w_s (x - b)``."""
    name = "straight_line"

    def __init__(self, steps: int, rule: str = "left"):
        self.plan = riemann_plan(steps, rule)
        self.rule = rule

    def points(self, x, b, point_ids):
        a = tf.constant(self.plan.params[point_ids], tf.float32)[:, None, None, None]
        return b + a * (x - b)

    def deltas(self, x, b, seg_ids, points=None):
        w = tf.constant(self.plan.seg_weight[seg_ids], tf.float32)[:, None, None, None]
        return w * (x - b)


class BlurPath:
    """BlurIG (Xu et al., CVPR 2020) as PAIR implements it: blur levels ``sigma_i = i*max_sigma/steps``
    (or their square roots), gradients at ``sigma_0 .. sigma_{steps-1}``, displacement
    ``-(sigma_{i+1} - sigma_i) * d blur / d sigma`` by forward difference ``grad_step``.

    Ordered from the fully blurred image (start, value point ``steps``) to the input (value point 0).
    """
    name = "blur"

    def __init__(self, steps: int, max_sigma: float = 50.0, grad_step: float = 0.01, sqrt: bool = False):
        i = np.arange(steps + 1, dtype=np.float64)
        self.sigmas = np.sqrt(i * max_sigma / steps) if sqrt else i * max_sigma / steps
        self.grad_step = float(grad_step)
        s = np.arange(steps)
        self.plan = PathPlan(self.sigmas, s, s + 1, s, np.diff(self.sigmas))

    def points(self, x, b, point_ids):
        return gaussian_blur(x, self.plan.params[point_ids])

    def deltas(self, x, b, seg_ids, points=None):
        sig = self.plan.params[self.plan.seg_point[seg_ids]]
        if points is None:
            points = gaussian_blur(x, sig)
        ahead = gaussian_blur(x, sig + self.grad_step)
        w = tf.constant(-self.plan.seg_weight[seg_ids] / self.grad_step, tf.float32)[:, None, None, None]
        return w * (ahead - points)


class ArrayPath:
    """A user-given path: ``points`` of shape (S+1, H, W, C) shared by all images, or (N, S+1, H, W, C),
    ordered from baseline to input; left-point gradients, displacement ``x_{s+1} - x_s``."""
    name = "custom"

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
        self._image_ids = None

    def bind(self, image_ids):
        self._image_ids = np.asarray(image_ids)

    def points(self, x, b, point_ids):
        return tf.constant(self.array[self._image_ids, point_ids])

    def deltas(self, x, b, seg_ids, points=None):
        nxt = self.array[self._image_ids, self.plan.seg_end[seg_ids]]
        cur = self.array[self._image_ids, self.plan.seg_point[seg_ids]]
        return tf.constant(nxt - cur)
