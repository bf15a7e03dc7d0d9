"""Integrated Gradients (Sundararajan et al., ICML 2017, Eq. 1) on the straight line, any Riemann rule,
Gauss-Legendre quadrature, or an adaptive schedule of the steps."""
from __future__ import annotations

from ..checks import one_of, positive_float, positive_int
from ..paths.aggregators import get_aggregator
from ..paths.engine import values_along
from ..paths.fixed import StraightLinePath
from ..paths.rules import RULES, SCHEDULED_RULES, has_segments
from ..paths.schedules import COARSE_SEGMENTS, SCHEDULES, ScheduledLinePath, allocate_knots
from .path import PathMethod


class IntegratedGradients(PathMethod):
    """``(x - b) * integral_0^1 df_c(b + a(x - b))/dx da``; ``aggregator="idgi"`` gives IG+IDGI.

    ``rule``: left, right, midpoint, trapezoid, "saliency" (PAIR's endpoint-inclusive rule on
    ``linspace(0, 1, steps)``, points built in float64 as PAIR's ``IntegratedGradients`` builds them; with
    IDGI its ``steps - 1`` segments, the grid the IDGI paper ran on, see :func:`~tfxattr.paths.rules.riemann_plan`),
    or "gausslegendre" (``steps`` Gauss-Legendre nodes, :func:`~tfxattr.paths.rules.gauss_legendre_plan`).
    Default: trapezoid for the Riemann sum, left for IDGI (Yang et al. 2023, Algorithm 1: the gradient
    at each segment's start).
    ``schedule="adaptive"``: a coarse pass of forward passes along the line places the ``steps`` gradients
    where f changes fast (:func:`~tfxattr.paths.schedules.allocate_knots`); same number of gradients, IDGI still
    exactly complete.
    """
    name = "ig"
    summary = ("Integrated Gradients on the straight line from a baseline "
               "(rule=left|right|midpoint|trapezoid|saliency|gausslegendre, schedule=uniform|adaptive)")
    defaults = {"aggregator": "riemann", "steps": 50, "baseline": "black", "rule": None, "blur_sigma": 20.0,
                "schedule": "uniform"}

    def validate(self):
        super().validate()
        positive_int(self.options["steps"], "steps")
        positive_float(self.options["blur_sigma"], "blur_sigma")
        one_of(self.options["schedule"], "schedule", SCHEDULES)
        if self.options["rule"] is not None:
            one_of(self.options["rule"], "rule", RULES)
        if get_aggregator(self.options["aggregator"]).needs_values and not has_segments(self.rule):
            raise ValueError(f"rule={self.rule!r} weights gradients at single points, but aggregator='idgi' needs "
                             "segments with f at both ends (its weights are f-differences, not quadrature "
                             "weights): use rule='left', 'right', 'midpoint' or 'saliency'")
        if self.rule == "saliency" and self.options["steps"] < 2:
            raise ValueError("rule='saliency' needs steps >= 2")
        if self.options["schedule"] == "adaptive" and self.rule not in SCHEDULED_RULES:
            raise ValueError(f"schedule='adaptive' moves the knots of a Riemann grid: rule must be one of "
                             f"{SCHEDULED_RULES}, got {self.rule!r}")

    @property
    def rule(self) -> str:
        """The Riemann rule in effect: ``rule``, or the aggregator's default when it is None."""
        if self.options["rule"] is not None:
            return self.options["rule"]
        return "left" if get_aggregator(self.options["aggregator"]).needs_values else "trapezoid"

    def export_refusal(self) -> str:
        if self.options["schedule"] == "adaptive":
            return ("schedule='adaptive' places each image's points from a coarse pass of the model on it, "
                    "computed in NumPy (allocate_knots)")
        return super().export_refusal()

    def make_path(self, evaluator, images):
        if self.options["schedule"] == "adaptive":
            raise ValueError("schedule='adaptive' places each image's points from the model's values on it: "
                             "the path exists only for given images and targets (fit_path)")
        return StraightLinePath(self.options["steps"], self.rule)

    def fit_path(self, evaluator, images, baselines, targets):
        if self.options["schedule"] != "adaptive":
            return self.make_path(evaluator, images)
        coarse = values_along(evaluator, StraightLinePath(COARSE_SEGMENTS, "left"), images, baselines, targets,
                              evaluator.batch_size)
        return ScheduledLinePath(allocate_knots(coarse, self.options["steps"]), self.rule)
