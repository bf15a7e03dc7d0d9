"""Completeness, a sanity metric for path methods (Sundararajan et al., ICML 2017, Prop. 1; IDGI, Yang
et al. 2023, Sec. 3): the attributions of a path method should add up to ``f(x) - f(x')``, the change of
the explained output between the path's start ``x'`` and the input.

It needs what a reduced map has lost, so it consumes the Explanation (``consumes="explanation"``):

* the attribution with its channels (every pixel and channel is summed, signed);
* the explained output (``Explanation.run["output"]``: the logit, or the probability) of the target;
* the method and its options, whose path start is the baseline (``PathMethod.path_start``: the baseline
  of ig and guided_ig, the most blurred image of blur_ig, a custom path's first point; ggig, a max of
  gradients, has none). ``baseline=`` overrides it ("black", "white", "blur", a number or an array),
  e.g. to check a method that is not a path method.

Per image: ``abs_error = |sum(a) - (f(x) - f(x'))|`` and ``rel_error = abs_error / |f(x) - f(x')|``
(skipped where ``f(x) = f(x')``); both lower is better (0 = complete; IDGI is complete by construction,
Riemann sums approach it with more steps). Unlike the ranking metrics, a constant (e.g. all-zero)
attribution is scored, not skipped: its error is well defined and is exactly what this check reports.
"""
from __future__ import annotations

import numpy as np

from ..checks import number
from ..inputs import resolve_baseline
from .inputs import metric_inputs
from .result import MetricResult

EQUAL_OUTPUTS = "f(x) equals f(baseline): relative error undefined"


def completeness(model, images, maps, targets=None, masks=None, batch_size=32, *, baseline=None,
                 blur_sigma=20.0) -> MetricResult:
    """Completeness of a path method's Explanation (module docstring): scores "abs_error" and "rel_error"
    (lower is better); ``extras``: "attribution_sum", "delta" (= f(x) - f(x')), "f_input", "f_baseline".
    ``maps``: the Explanation. ``baseline``: None = the method's path start. ``masks`` is not used."""
    number(blur_sigma, "blur_sigma", 0.0)
    inputs = metric_inputs(model, images, maps, targets, masks, batch_size, consumes="explanation",
                           metric="metric 'completeness'")
    adapter, x = inputs.adapter, inputs.images
    if baseline is None:
        method = inputs.method()
        start = method.path_start(adapter, x) if hasattr(method, "path_start") else None
        if start is None:
            raise ValueError(f"completeness: method {method.name!r} has no path start to compare with (completeness "
                             f"is a property of path methods: ig, guided_ig, blur_ig, path and their +idgi); pass "
                             f"baseline=... to check it against a baseline of your choice")
    else:
        start = resolve_baseline(baseline, x, adapter.pixel_range, blur_sigma)
    f_input = np.asarray(adapter.values(x, inputs.targets), np.float64)
    f_baseline = np.asarray(adapter.values(np.asarray(start, np.float32), inputs.targets), np.float64)
    delta = f_input - f_baseline
    total = inputs.attribution.reshape(len(x), -1).astype(np.float64).sum(1)
    abs_error = np.abs(total - delta)
    equal = {int(i): EQUAL_OUTPUTS for i in np.flatnonzero(delta == 0)}
    rel_error = np.where(delta == 0, np.nan, abs_error / np.where(delta == 0, 1.0, np.abs(delta)))
    return MetricResult("completeness", {"abs_error": abs_error, "rel_error": rel_error},
                        {"abs_error": False, "rel_error": False}, skipped={"rel_error": equal}, aggregation="mean",
                        options=dict(baseline="method" if baseline is None else
                                     (baseline if isinstance(baseline, str) else "array"),
                                     blur_sigma=blur_sigma, output=adapter.output),
                        targets=inputs.targets, extras={"attribution_sum": total, "delta": delta,
                                                        "f_input": f_input, "f_baseline": f_baseline})
