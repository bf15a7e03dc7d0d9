"""What a metric returns: :class:`MetricResult` (per-image scores, skip reasons, curves) and its
:class:`Curve`, with the aggregation over images (pointwise, or IDGI's binned estimator,
:func:`binned_curve`) and :func:`skip_images`, the one way a metric marks images as skipped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from ..checks import one_of, positive_int

#: how per-image values are aggregated over images
AGGREGATIONS = ("mean", "median")


@dataclass
class Curve:
    """One curve per image on a shared x-axis: ``x`` (P,), ``y`` (N, P) (NaN rows where skipped).

    The score of image i is ``scale * trapezoid(y[i], x)``.

    ``points`` (N, T, 2) and ``bins`` > 0 mark a *binned* curve (IDGI Sec. 4.4): the aggregate over images
    is not taken pointwise over ``y`` but from the pooled raw (x, y) points of the kept images, binned into
    ``bins`` equal bins of x (:func:`binned_curve`). ``y`` still holds each image's own curve.
    """
    x: np.ndarray
    y: np.ndarray
    scale: float = 1.0
    points: Optional[np.ndarray] = None
    bins: int = 0


@dataclass
class MetricResult:
    """Per-image scores, curves and skips of one metric on N images.

    ``scores``: name -> float64 (N,), NaN where that score skipped the image.
    ``curves``: name -> :class:`Curve`, for the scores that are areas under a curve.
    ``skipped``: name -> {image index: reason}, one entry per score name (empty dict: none skipped).
    ``higher_is_better``: name -> bool.  ``aggregation``: "mean" or "median", the paper's default for
    every score not named in ``score_aggregation`` (name -> "mean"/"median", e.g. SIC median and AIC mean
    as in XRAI and IDGI Sec. 4.4); :meth:`aggregation_of` gives the one a score uses.
    ``extras``: metric-specific arrays (e.g. thresholds, raw predictions).
    """
    metric: str
    scores: Dict[str, np.ndarray]
    higher_is_better: Dict[str, bool]
    curves: Dict[str, Curve] = field(default_factory=dict)
    skipped: Dict[str, Dict[int, str]] = field(default_factory=dict)
    aggregation: str = "mean"
    options: dict = field(default_factory=dict)
    targets: Optional[np.ndarray] = None
    extras: dict = field(default_factory=dict)
    score_aggregation: Dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        for name in self.scores:
            self.skipped.setdefault(name, {})
        one_of(self.aggregation, "aggregation", AGGREGATIONS)
        for how in self.score_aggregation.values():
            one_of(how, "score_aggregation values", AGGREGATIONS)

    def aggregation_of(self, name: str, method=None) -> str:
        """How score ``name`` is aggregated: ``method`` ("mean"/"median" for every score, or a dict of
        per-score overrides), else the score's own (``score_aggregation``), else ``aggregation``."""
        if isinstance(method, dict):
            how = method.get(name)
        else:
            how = method
        how = how or self.score_aggregation.get(name, self.aggregation)
        one_of(how, "method", AGGREGATIONS)
        return how

    @property
    def num_images(self) -> int:
        return len(next(iter(self.scores.values()))) if self.scores else 0

    def kept(self, name: str) -> np.ndarray:
        """Indices of the images that ``name`` scored (not skipped)."""
        return np.array([i for i in range(self.num_images) if i not in self.skipped[name]], dtype=int)

    def aggregate(self, method=None) -> Dict[str, float]:
        """One number per score over the kept images (NaN if none was kept).

        ``method``: None (each score's own, :meth:`aggregation_of`), "mean"/"median" for every score, or a
        dict of per-score overrides. A score with a curve aggregates the curves pointwise, then takes the
        area (PAIR's ``aggregate_individual_pic_results``); with "mean" that equals the mean of the areas.
        A binned curve (``Curve.bins``) pools the raw points of the kept images (:func:`binned_curve`).
        """
        out = {}
        for name, values in self.scores.items():
            how = self.aggregation_of(name, method)
            kept = self.kept(name)
            if len(kept) == 0:
                out[name] = float("nan")
            elif name in self.curves:
                x, y = self._aggregate_curve(name, kept, how)
                out[name] = float(self.curves[name].scale * np.trapezoid(y, x)) if len(x) else float("nan")
            else:
                out[name] = float(_REDUCERS[how](values[kept]))
        return out

    def aggregate_curves(self, method=None) -> Dict[str, tuple]:
        """name -> (x, aggregated y) for every score with a curve."""
        return {name: self._aggregate_curve(name, self.kept(name), self.aggregation_of(name, method))
                for name in self.curves if len(self.kept(name))}

    def _aggregate_curve(self, name, kept, how):
        c = self.curves[name]
        if c.bins:
            return binned_curve(c.points[kept, :, 0], c.points[kept, :, 1], c.bins, how)
        return c.x, _REDUCERS[how](c.y[kept], axis=0)

    def summary(self, method=None) -> str:
        """A small text table: score, aggregate (with how it was aggregated), direction, images used / skipped."""
        agg = self.aggregate(method)
        lines = [f"{self.metric} (over {self.num_images} images)"]
        for name, value in agg.items():
            arrow = "higher is better" if self.higher_is_better[name] else "lower is better"
            n_skip = len(self.skipped[name])
            how = self.aggregation_of(name, method) + (" of bins" if name in self.curves and self.curves[name].bins
                                                       else "")
            lines.append(f"  {name:<16} {value:10.4f}   ({how}; {arrow}; {self.num_images - n_skip} used, "
                         f"{n_skip} skipped)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Plain lists and numbers (JSON-ready; NaN stays float('nan'))."""
        return {
            "metric": self.metric, "aggregation": self.aggregation,
            "score_aggregation": {k: self.aggregation_of(k) for k in self.scores}, "options": _plain(self.options),
            "targets": None if self.targets is None else self.targets.tolist(),
            "scores": {k: v.tolist() for k, v in self.scores.items()},
            "aggregate": self.aggregate(), "higher_is_better": dict(self.higher_is_better),
            "skipped": {k: {str(i): r for i, r in v.items()} for k, v in self.skipped.items()},
            "curves": {k: {"x": c.x.tolist(), "y": c.y.tolist(), "scale": c.scale,
                           **({"bins": c.bins, "points": c.points.tolist()} if c.bins else {})}
                       for k, c in self.curves.items()},
        }

    def __repr__(self):
        agg = ", ".join(f"{k}={v:.4f}" for k, v in self.aggregate().items())
        return f"MetricResult({self.metric!r}, n={self.num_images}, {agg})"


_REDUCERS = {"mean": np.mean, "median": np.median}


def binned_curve(levels, values, bins: int, how: str):
    """IDGI Sec. 4.4's binned information curve from pooled (information level, value) points.

    The points of every image are pooled; x in [0, 1] falls in bin ``min(floor(x * bins), bins - 1)``
    (``bins`` equal bins; x = 1 in the last); each non-empty bin gives (its centre, the ``how`` ("mean"
    for AIC, "median" for SIC) of its values). Empty bins give no point; the area is the trapezoid rule
    over the returned points. Non-finite points are dropped. Returns (x, y), both (B,) with B <= ``bins``.
    """
    positive_int(bins, "bins")
    one_of(how, "how", AGGREGATIONS)
    x = np.asarray(levels, np.float64).reshape(-1)
    y = np.asarray(values, np.float64).reshape(-1)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = np.clip(x[ok], 0.0, 1.0), y[ok]
    index = np.minimum(np.floor(x * bins).astype(int), bins - 1)
    filled = np.unique(index)
    centres = (filled + 0.5) / bins
    return centres, np.array([_REDUCERS[how](y[index == b]) for b in filled], np.float64)


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def skip_images(result: "MetricResult", reasons: Dict[int, str]) -> "MetricResult":
    """Mark images ``reasons`` ({index: reason}) as skipped by every score of ``result``: NaN scores and
    curve rows, the reason in ``skipped`` (it replaces any other reason of that image). Returns ``result``."""
    if not reasons:
        return result
    idx = np.fromiter(reasons, dtype=int)
    for name, values in result.scores.items():
        values = result.scores[name] = np.asarray(values, np.float64).copy()
        values[idx] = np.nan
        result.skipped.setdefault(name, {}).update(reasons)
    for curve in result.curves.values():
        curve.y = np.asarray(curve.y, np.float64).copy()
        curve.y[idx] = np.nan
        if curve.points is not None:
            curve.points = np.asarray(curve.points, np.float64).copy()
            curve.points[idx] = np.nan
    return result
