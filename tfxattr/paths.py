"""Paths: which points between a baseline and the input are evaluated.

Two kinds (the protocols are in :mod:`tfxattr.models.contracts`; each path declares which it is):

* a fixed :class:`~tfxattr.models.contracts.Path` (``adaptive = False``) is a discrete plan
  (:class:`PathPlan`) plus a way to make its points and segment displacements for any chunk of
  (image, point) pairs, so that a whole path never has to sit in memory. Points are ordered from
  the baseline (start) to the input (end). :class:`StraightLinePath`, :class:`BlurPath`,
  :class:`ArrayPath`.
* an :class:`~tfxattr.models.contracts.AdaptivePath` (``adaptive = True``): the next point depends
  on the gradient at the current one, so rows walk their steps in lockstep. :class:`GuidedPath`
  (Guided IG), :class:`AscentPath` (GGIG).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from .batching import per_row
from .blur import gaussian_blur
from .checks import one_of

RULES = ("left", "right", "midpoint", "trapezoid", "saliency", "gausslegendre")


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

    @property
    def has_ends(self) -> np.ndarray:
        """Which segments have both end points (the only ones an f-value aggregator such as IDGI uses)."""
        return (self.seg_start >= 0) & (self.seg_end >= 0)

    def value_only_points(self):
        """Points whose f-value IDGI needs but that are not the gradient point of a segment IDGI uses.

        The engine takes gradients only at segments with both ends when the aggregator needs
        f-values, so a point that is the gradient point of an end-less segment only (the input on
        PAIR's ``linspace`` grid) must be evaluated for its value alone.
        """
        used = self.has_ends
        ends = np.unique(np.concatenate([self.seg_start[used], self.seg_end[used]]))
        return np.setdiff1d(ends, self.seg_point[used])


def riemann_plan(steps: int, rule: str) -> PathPlan:
    """Parameters in [0, 1] for ``steps`` segments under a Riemann ``rule``.

    ``"saliency"`` reproduces PAIR's ``IntegratedGradients``: ``linspace(0, 1, steps)``, every
    gradient weighted ``1/steps`` (endpoint-inclusive: neither a left nor a right sum). For IDGI
    (Yang et al. 2023, Algorithm 1: ``d = f(x_{j+1}) - f(x_j)``, ``g`` at ``x_j``) the ``steps``
    points of that grid make ``steps - 1`` segments, the gradient at each segment's start; the last
    gradient (at the input) has no segment and is only a Riemann term, while the input's f-value
    closes the last segment, so IDGI on this grid sums exactly to ``f(x) - f(b)``.
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
    if rule == "gausslegendre":
        return gauss_legendre_plan(steps)
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")


def gauss_legendre_plan(nodes: int) -> PathPlan:
    """Gauss-Legendre quadrature on [0, 1] (Press et al., Numerical Recipes, Sec. 4.6; Captum's
    ``method="gausslegendre"``): ``nodes`` gradients integrate polynomials of degree ``2 nodes - 1``
    exactly, against degree 1 for ``nodes`` left-point or trapezoid terms. The nodes are not segment
    ends, so it has no segments for IDGI (see :func:`has_segments`).
    """
    t, w = np.polynomial.legendre.leggauss(nodes)
    p = np.arange(nodes)
    none = np.full(nodes, -1)
    return PathPlan((t + 1.0) / 2.0, p, none, none, w / 2.0)


def has_segments(rule: str) -> bool:
    """Whether ``rule``'s gradient terms are path segments with two evaluated ends (what IDGI's
    ``f(end) - f(start)`` needs): not for the trapezoid's and Gauss-Legendre's point weights."""
    return bool(riemann_plan(2, rule).has_ends.any())


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


# -- IG's adaptive schedule ------------------------------------------------------------------------
SCHEDULES = ("uniform", "adaptive")
# the rules a per-image schedule can warp: their points are knots or the midpoints of knot intervals
SCHEDULED_RULES = ("left", "right", "midpoint", "trapezoid")
# the coarse pass: f at COARSE_SEGMENTS + 1 evenly spaced points of the line (forward passes only,
# ~1/3 of a gradient each); f of a classifier along the IG line bends in a few places, which 16 cells locate
COARSE_SEGMENTS = 16
# the share of the steps spread evenly whatever f does, so that no stretch of the path where f
# looks flat at the coarse resolution is left without gradients
UNIFORM_SHARE = 0.25


def allocate_knots(values, steps: int, uniform_share: float = UNIFORM_SHARE) -> np.ndarray:
    """Knots ``0 = a_0 < ... < a_steps = 1`` per image from ``values`` (N, K+1), f at ``k/K``, K >= 2.

    IG's sum of attributions is a quadrature of ``f'(a)`` on [0, 1] whose error on a segment of length
    h is about ``h^2 |f''| / 2``; spreading that error evenly over the segments (de Boor's
    equidistribution principle, "Good approximation by splines with variable knots", 1973) asks for a
    density of knots proportional to ``|f''|^(1/2)``. ``f''`` of coarse cell k is estimated by the
    second differences of ``values`` at its ends; the cell gets the share ``(1 - u) d_k / sum d + u / K``
    of the steps (``u = uniform_share``), and the knots invert the piecewise-linear cumulative share.
    """
    values = np.asarray(values, np.float64)
    cells = values.shape[1] - 1
    bend = np.abs(np.diff(values, 2, axis=1))  # |f''| h^2 at the inner coarse points
    bend = np.concatenate([bend[:, :1], (bend[:, :-1] + bend[:, 1:]) / 2.0, bend[:, -1:]], 1)  # per cell
    density = np.sqrt(bend)
    total = density.sum(1, keepdims=True)
    share = np.divide(density, total, out=np.full_like(density, 1.0 / cells), where=total > 0)
    share = (1.0 - uniform_share) * share + uniform_share / cells
    cdf = np.concatenate([np.zeros((len(values), 1)), np.cumsum(share, 1)], 1)
    cdf /= cdf[:, -1:]
    grid, targets = np.linspace(0.0, 1.0, cells + 1), np.linspace(0.0, 1.0, steps + 1)
    knots = np.stack([np.interp(targets, row, grid) for row in cdf])
    knots[:, 0], knots[:, -1] = 0.0, 1.0
    return knots


class ScheduledLinePath:
    """The IG line walked at each image's own pace: point p of image i is ``b + phi_i(u_p) (x - b)``,
    ``u_p`` the uniform ``rule``'s parameter and ``phi_i`` the piecewise-linear map taking ``k/steps`` to
    ``knots[i, k]``. The line integral does not depend on its parametrisation, so this is IG (Sundararajan
    et al. 2017, Eq. 1) by ``rule`` on the grid ``knots[i]``; segment s spans knots s -> s+1 (IDGI-ready
    for the left, right and midpoint rules)."""
    adaptive = False

    def __init__(self, knots, rule: str = "left"):
        one_of(rule, "rule", SCHEDULED_RULES)
        self.knots = np.asarray(knots, np.float64)
        self.steps = self.knots.shape[1] - 1
        self.plan = riemann_plan(self.steps, rule)
        widths = np.diff(self.knots, axis=1)
        if rule == "trapezoid":  # point p: half of the intervals on either side
            padded = np.pad(widths, ((0, 0), (1, 1)))
            widths = (padded[:, :-1] + padded[:, 1:]) / 2.0
        self.weights = widths

    def alphas(self, point_ids, image_ids):
        """float64 (rows,): ``phi_i(u_p)`` of each row's point and image."""
        u = tf.gather(tf.constant(self.plan.params, tf.float64), point_ids) * self.steps
        j = tf.minimum(tf.cast(tf.floor(u), tf.int32), self.steps - 1)
        k = tf.gather(tf.constant(self.knots, tf.float64), image_ids)
        lo, hi = tf.gather(k, j, batch_dims=1), tf.gather(k, j + 1, batch_dims=1)
        return lo + (u - tf.cast(j, tf.float64)) * (hi - lo)

    def points(self, x, b, point_ids, image_ids):
        return b + per_row(tf.cast(self.alphas(point_ids, image_ids), tf.float32)) * (x - b)

    def deltas(self, x, b, seg_ids, image_ids, points=None):
        w = tf.gather_nd(tf.constant(self.weights, tf.float32), tf.stack([image_ids, seg_ids], 1))
        return per_row(w) * (x - b)


# where BlurIG takes each segment's gradient: at its end nearer the input (PAIR's BlurIG) or at its
# end nearer the fully blurred image (IDGI's Algorithm 1 read with the blurred image as the baseline)
GRADIENT_SIDES = ("input_side", "blurred_side")


class BlurPath:
    """BlurIG (Xu et al., CVPR 2020, Eq. 4-5) as PAIR implements it: blur levels
    ``sigma_i = i*max_sigma/steps`` (or their square roots), value point ``i`` = the input blurred
    with ``sigma_i``; segment ``s`` runs from ``sigma_{s+1}`` (start, blurred side) to ``sigma_s`` (end,
    input side) with displacement ``-(sigma_{s+1} - sigma_s) * d blur / d sigma``, the derivative a
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

    def __init__(self, steps: int, max_sigma: float = 50.0, grad_step: float = 0.01, sqrt: bool = False,
                 gradient_at: str = "input_side"):
        one_of(gradient_at, "gradient_at", GRADIENT_SIDES)
        i = np.arange(steps + 1, dtype=np.float64)
        self.sigmas = np.sqrt(i * max_sigma / steps) if sqrt else i * max_sigma / steps
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


# -- adaptive paths --------------------------------------------------------------------------------
# PAIR's tolerance for "the L1 target is reached" (math.isclose with rel_tol = abs_tol = EPSILON)
EPSILON = 1e-9
# Guided IG's inner loop (Alg. 1, the "while gamma > 1" loop) sends at least a `fraction` of the
# still-free features to their bound per pass, so ~1/fraction passes close a step; PAIR never caps
# it, we cap it at ITERATION_CAP_FACTOR / fraction + ITERATION_CAP_MARGIN passes as a safety net.
ITERATION_CAP_FACTOR = 4.0
ITERATION_CAP_MARGIN = 100.0


@tf.function(input_signature=[tf.TensorSpec((None, None), tf.float64)] * 4
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
    ``lr`` acts on the images as given (pixel space)."""
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
