"""Integrated Gradients (Sundararajan et al., ICML 2017, Eq. 1) on the straight line, any Riemann rule."""
from __future__ import annotations

from ..checks import one_of, positive_float, positive_int
from ..paths import RULES, StraightLinePath
from .path import PathMethod


class IntegratedGradients(PathMethod):
    """``(x - b) * integral_0^1 df_c(b + a(x - b))/dx da``; ``aggregator="idgi"`` gives IG+IDGI.

    ``rule``: left, right, midpoint, trapezoid, or "saliency" (PAIR's endpoint-inclusive rule on
    ``linspace(0, 1, steps)``, points built in float64 as PAIR's ``IntegratedGradients`` builds them; with
    IDGI its ``steps - 1`` segments, the grid the IDGI paper ran on, see :func:`~tfxattr.paths.riemann_plan`).
    Default: trapezoid for the Riemann sum, left for IDGI (Yang et al. 2023, Algorithm 1: the gradient
    at each segment's start).
    """
    name = "ig"
    summary = "Integrated Gradients on the straight line from a baseline (rule=left|right|midpoint|trapezoid|saliency)"
    defaults = {"aggregator": "riemann", "steps": 50, "baseline": "black", "rule": None, "blur_sigma": 20.0}

    def validate(self):
        super().validate()
        positive_int(self.options["steps"], "steps")
        positive_float(self.options["blur_sigma"], "blur_sigma")
        if self.options["rule"] is not None:
            one_of(self.options["rule"], "rule", RULES)
        if self.options["aggregator"] == "idgi" and self.rule == "trapezoid":
            raise ValueError("rule='trapezoid' takes two gradients per step; aggregator='idgi' needs one: "
                             "use rule='left', 'right', 'midpoint' or 'saliency'")
        if self.rule == "saliency" and self.options["steps"] < 2:
            raise ValueError("rule='saliency' needs steps >= 2")

    @property
    def rule(self) -> str:
        """The Riemann rule in effect: ``rule``, or the aggregator's default when it is None."""
        if self.options["rule"] is not None:
            return self.options["rule"]
        return "left" if self.options["aggregator"] == "idgi" else "trapezoid"

    def make_path(self, evaluator, images):
        return StraightLinePath(self.options["steps"], self.rule)
