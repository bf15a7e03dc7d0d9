"""Integration rules: where on [0, 1] a path's gradients are taken and how much each weighs.

A rule turns ``steps`` into a :class:`PathPlan` (:func:`riemann_plan`): the parameters of the points to
evaluate and, per segment, its gradient point, its two end points and its weight. Every method that
integrates along a parameter in [0, 1] reads its rules here: IG (any rule), IIA (the rules that sample one
point per segment with equal weights, :data:`EQUAL_WEIGHT_RULES`), IG's adaptive schedule (the rules whose
points are knots or midpoints of knot intervals, :data:`SCHEDULED_RULES`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import one_of

RULES = ("left", "right", "midpoint", "trapezoid", "saliency", "gausslegendre")
# one gradient per segment at a fixed place in it, every gradient weighing 1/steps: a sum over the points
# divided by steps (IIA's Eq. 10 divides by n^beta) is the rule's quadrature
EQUAL_WEIGHT_RULES = ("left", "right", "midpoint")
# the rules a per-image schedule can warp: their points are knots or the midpoints of knot intervals
SCHEDULED_RULES = ("left", "right", "midpoint", "trapezoid")


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

    @property
    def gradient_params(self) -> np.ndarray:
        """float64 (segments,): the path parameter where each segment takes its gradient."""
        return self.params[self.seg_point]

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
    one_of(rule, "rule", RULES)
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
    return gauss_legendre_plan(steps)  # "gausslegendre"


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


def equal_weight_params(steps: int, rule: str) -> np.ndarray:
    """float64 (steps,): where an :data:`EQUAL_WEIGHT_RULES` rule takes its ``steps`` gradients on [0, 1]
    (``(k + offset) / steps``, offset 0, 1/2 or 1), each weighing ``1/steps``."""
    one_of(rule, "rule", EQUAL_WEIGHT_RULES)
    return riemann_plan(steps, rule).gradient_params
