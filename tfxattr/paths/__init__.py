"""Path methods' machinery: which points between a baseline and the input are evaluated (a path), how the
gradients there become an attribution (an aggregator), and the one batched engine that runs any path with
any aggregator.

* :mod:`.rules` — integration rules: a rule name gives a :class:`PathPlan` (point parameters, per segment
  its gradient point, end points and weight), shared by IG, IIA and IG's schedules.
* :mod:`.schedules` — IG's step schedules (``"uniform"``, ``"adaptive"``: knots placed per image).
* :mod:`.fixed` — paths whose points are fixed by their plan (``adaptive = False``): straight line, blur,
  a user-given array.
* :mod:`.adaptive` — paths whose next point depends on the last gradients (``adaptive = True``): Guided IG,
  GGIG's gradient ascent.
* :mod:`.aggregators` — Riemann sum, IDGI, per-feature maximum; the aggregator registry.
* :mod:`.engine` — :func:`integrate`: every model call a chunk of at most ``batch_size`` rows, eager or traced.

The protocols a path implements are in :mod:`tfxattr.models.contracts`.
"""
from .adaptive import AscentPath, GuidedPath, GuidedState
from .aggregators import (
                          AGGREGATORS,
                          IDGI,
                          PATH_AGGREGATORS,
                          Aggregator,
                          MaxGradient,
                          Riemann,
                          get_aggregator,
                          register_aggregator,
                          unregister_aggregator,
)
from .engine import integrate, values_along
from .fixed import GRADIENT_SIDES, ArrayPath, BlurPath, StraightLinePath
from .rules import EQUAL_WEIGHT_RULES, RULES, SCHEDULED_RULES, PathPlan, gauss_legendre_plan, has_segments, riemann_plan
from .schedules import SCHEDULES, ScheduledLinePath, allocate_knots

__all__ = ["AGGREGATORS", "EQUAL_WEIGHT_RULES", "GRADIENT_SIDES", "IDGI", "PATH_AGGREGATORS", "RULES",
           "SCHEDULED_RULES", "SCHEDULES", "Aggregator", "ArrayPath", "AscentPath", "BlurPath", "GuidedPath",
           "GuidedState", "MaxGradient", "PathPlan", "Riemann", "ScheduledLinePath", "StraightLinePath",
           "allocate_knots", "gauss_legendre_plan", "get_aggregator", "has_segments", "integrate",
           "register_aggregator", "riemann_plan", "unregister_aggregator", "values_along"]
