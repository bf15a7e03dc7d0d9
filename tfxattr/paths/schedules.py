"""IG's step schedules: ``"uniform"`` (the rule's grid, :class:`~tfxattr.paths.fixed.StraightLinePath`) or
``"adaptive"``: a coarse pass of forward passes along the line finds where f bends, and each image gets its
own knots there (:func:`allocate_knots`, :class:`ScheduledLinePath`); same number of gradients.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..batching import per_row
from ..checks import one_of
from .rules import SCHEDULED_RULES, riemann_plan

SCHEDULES = ("uniform", "adaptive")
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
