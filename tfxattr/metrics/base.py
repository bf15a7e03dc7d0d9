"""What every metric shares: the result type, batching helpers and the registry (the inputs are normalised
in :mod:`tfxattr.metrics.inputs`).

See the package docstring (``tfxattr.metrics``) for the calling convention a runner relies on.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

import numpy as np

from ..batching import chunks, spans
from ..checks import boolean, did_you_mean, one_of, positive_int
from ..models.options import takes_model_options
from ..parallel import WorkerPool, resolve_jobs, worker_pool
from ..progress import progress_bar
from ..registry import Registry
from .inputs import METRIC_MODEL_DEFAULTS, metric_model

AGGREGATIONS = ("mean", "median")
# perturbed images are built for as many source images as fill this many model batches at once
GROUP_BATCHES = 4


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


# -- result helpers ---------------------------------------------------------------------------
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


def check_fractions(values, name: str, ascending: bool = True) -> np.ndarray:
    """A 1-D float64 array of values in (0, 1], strictly increasing if ``ascending``."""
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numbers in (0, 1], got {values!r}") from err
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    bad = arr[~((arr > 0) & (arr <= 1))]
    if bad.size:
        raise ValueError(f"{name} must lie in (0, 1], got {bad.tolist()}")
    if ascending and np.any(np.diff(arr) <= 0):
        raise ValueError(f"{name} must be strictly increasing, got {arr.tolist()}")
    return arr


def check_labels(labels, n: int) -> np.ndarray:
    """int64 (n,) ground-truth labels from one int or n ints."""
    arr = np.asarray(labels)
    if arr.ndim == 0:
        arr = np.full(n, int(arr))
    if arr.shape != (n,) or arr.dtype.kind not in "iu":
        raise ValueError(f"labels must be one int or {n} ints (one per image), got {arr.dtype} {arr.shape}")
    return arr.astype(np.int64)


def check_step(step, name: str = "step") -> np.ndarray:
    """Fractions 0, step, 2*step, ..., 1 (the last one clipped to 1)."""
    check_fractions([step], name)
    n = math.ceil(1.0 / step - 1e-9)
    return np.minimum(np.arange(n + 1) * float(step), 1.0)


def pixel_ranks(maps: np.ndarray) -> np.ndarray:
    """int (N,H,W): 0 for each map's highest value, 1 for the next, ... (ties in raster order)."""
    n, h, w = maps.shape
    order = np.argsort(-maps.reshape(n, -1), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(h * w)[None].repeat(n, 0), axis=1)
    return ranks.reshape(n, h, w)


def image_groups(n_images: int, per_image: int, batch_size: int):
    """Consecutive ranges of images whose ``per_image`` perturbed copies fill a few model batches."""
    size = max(1, (GROUP_BATCHES * batch_size) // max(per_image, 1))
    for span in spans(n_images, size):
        yield range(span.start, span.stop)


def predict_perturbed(adapter, n_images: int, per_image: int, progress, desc: str, build, jobs=1) -> np.ndarray:
    """(N, per_image, K) probabilities of every image's ``per_image`` perturbed copies.

    ``build(i) -> (fn, args)``: ``fn(*args)`` gives image i's (per_image, H, W, C) copies. The copies of a
    few images (:func:`image_groups`) go through the model together, chunked by ``adapter.batch_size``;
    with ``jobs`` > 1 (or a :class:`~tfxattr.parallel.WorkerPool`) the ``fn`` calls run in worker processes
    (``fn`` a module-level function of NumPy arrays, no TensorFlow), the next group's while the model predicts
    this one's; the same calls either way, so the same numbers."""
    out = np.empty((n_images, per_image, adapter.num_classes), np.float32)
    groups = list(image_groups(n_images, per_image, adapter.batch_size))
    with worker_pool(jobs, n_images) as pool, progress_bar(len(groups), desc, progress) as bar:
        done = pool.ordered(_call, (build(i) for i in range(n_images)),
                            ahead=len(groups[0]) + pool.jobs if groups else None)
        for group in groups:
            stack = np.concatenate([next(done) for _ in group]).astype(np.float32)
            out[group.start:group.stop] = adapter.probabilities(stack).reshape(len(group), per_image, -1)
            bar.update()
    return out


def _call(fn, args):
    return fn(*args)


def over_rows(rows: np.ndarray, size: int, fn, progress=False, desc: str = "") -> np.ndarray:
    """``fn(block)`` for consecutive blocks of at most ``size`` of ``rows`` (e.g. (image, sample) pairs,
    :func:`tfxattr.batching.pairs`), concatenated: memory is bounded by ``size`` rows, whatever their number."""
    out = []
    with progress_bar(-(-len(rows) // size), desc, progress) as bar:
        for block in chunks(rows, size):
            out.append(np.asarray(fn(block)))
            bar.update()
    return np.concatenate(out)


def gather(probabilities: np.ndarray, targets) -> np.ndarray:
    """``probabilities[..., targets]`` per row: (N, P, K), (N,) -> (N, P)."""
    return np.take_along_axis(probabilities, np.asarray(targets).reshape(-1, 1, 1), axis=-1)[..., 0]


# -- registry -----------------------------------------------------------------------------
#: what a metric scores: attribution maps of plain images, maps of grid images (Rao et al.), the model
#: itself (sanity checks recompute explanations on changed models), or the Explanation (passed as
#: ``maps``: the attribution with its channels and the method that made it, re-run on the same model)
CONSUMES = ("maps", "grid", "model", "explanation")


def metric_options(fn: Callable) -> Dict[str, object]:
    """Option name -> default of a metric function (its keyword-only parameters)."""
    params = inspect.signature(fn).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric: its function, preset options and capabilities.

    ``consumes``: "maps" | "grid" | "model" | "explanation" (see :data:`CONSUMES`); ``needs_masks``: needs object
    masks; ``uses_labels``: takes the ground-truth ``labels`` option; ``curve_axes``: score name ->
    x-axis label of its curve; ``parallel``: its per-image CPU work runs on ``jobs`` processes (the function
    takes ``jobs``, :mod:`tfxattr.parallel`). Calling it runs the metric with the common calling convention.
    """
    name: str
    fn: Callable[..., MetricResult]
    preset: Dict[str, object]
    summary: str
    consumes: str = "maps"
    needs_masks: bool = False
    uses_labels: bool = False
    curve_axes: Dict[str, str] = field(default_factory=dict)
    parallel: bool = False

    @property
    def defaults(self) -> Dict[str, object]:
        """Every option of this name with its default (the preset overrides the function's)."""
        return {**metric_options(self.fn), **self.preset}

    def __call__(self, model, images, maps, targets=None, masks=None, batch_size=32, jobs=None,
                 **options) -> MetricResult:
        """Run the metric; ``jobs`` (processes, None = every available core, or a run's
        :class:`~tfxattr.parallel.WorkerPool`) reaches only ``parallel`` metrics: the others run here."""
        defaults = self.defaults
        bad = sorted(set(options) - set(defaults))
        if bad:
            hints = "".join(did_you_mean(b, defaults) for b in bad)
            raise ValueError(f"unknown option(s) {bad} for metric {self.name!r}{hints}; "
                             f"valid options: {', '.join(sorted(defaults))}")
        if self.parallel:
            options["jobs"] = jobs
        elif jobs is not None and not isinstance(jobs, WorkerPool):
            resolve_jobs(jobs)  # a bad value is refused even where it is not used
        result = self.fn(model, images, maps, targets=targets, masks=masks, batch_size=batch_size,
                         **{**self.preset, **options})
        result.metric = self.name
        return result


METRICS: Registry[MetricSpec] = Registry("metric")


def register_metric(name: str, fn: Callable[..., MetricResult], summary: Optional[str] = None, *,
                    consumes: str = "maps", needs_masks: bool = False, uses_labels: bool = False,
                    curve_axes: Optional[Dict[str, str]] = None, parallel: bool = False, **preset) -> MetricSpec:
    """Register ``fn`` under ``name`` with its capabilities; ``preset`` options become this name's defaults.

    ``uses_labels`` needs a ``labels`` option in ``fn`` (the runner passes the data's labels there);
    ``parallel`` a ``jobs`` parameter before the options (see :class:`MetricSpec`).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"metric name must be a non-empty string, got {name!r}")
    if name in METRICS:
        raise ValueError(f"a metric named {name!r} is already registered")
    options = metric_options(fn)
    unknown = sorted(set(preset) - set(options))
    if unknown:
        raise ValueError(f"preset option(s) {unknown} are not options of {fn.__name__}")
    one_of(consumes, "consumes", CONSUMES)
    if boolean(uses_labels, "uses_labels") and "labels" not in options:
        raise ValueError(f"metric {name!r}: uses_labels=True needs a keyword-only 'labels' option in {fn.__name__}")
    if boolean(parallel, "parallel") and "jobs" not in inspect.signature(fn).parameters:
        raise ValueError(f"metric {name!r}: parallel=True needs a 'jobs' parameter in {fn.__name__}")
    curve_axes = dict(curve_axes or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in curve_axes.items()):
        raise ValueError(f"curve_axes must map score names to x-axis labels (strings), got {curve_axes!r}")
    spec = MetricSpec(name, fn, dict(preset), summary or (fn.__doc__ or "").strip().splitlines()[0],
                      consumes, boolean(needs_masks, "needs_masks"), uses_labels, curve_axes, parallel)
    return METRICS.register(name, spec)  # a name already registered is refused


def unregister_metric(name: str) -> None:
    """Remove the metric ``name``."""
    METRICS.unregister(name)


def get_metric(name: str) -> MetricSpec:
    """The registered metric ``name`` (ValueError with the closest names if unknown)."""
    return METRICS.find(name)


@takes_model_options(others=True, **METRIC_MODEL_DEFAULTS)
def compute(name: str, model, images, maps, targets=None, masks=None, *, jobs=None, **options) -> MetricResult:
    """``get_metric(name)(model, images, maps, targets, masks, batch_size, jobs, **options)``.

    ``jobs``: processes for the per-image CPU work of the metrics that have some (``METRICS[name].parallel``:
    SIC/AIC, ROAD); None = every core this process may use; 1 = none. The same numbers for every value.
    ``batch_size`` goes to the metric; the other model options build the model's adapter
    (:func:`tfxattr.metrics.inputs.metric_model`); the other ``options`` go to the metric."""
    metric = get_metric(name)
    model, batch_size, options = metric_model(model, metric.defaults, options)
    return metric(model, images, maps, targets=targets, masks=masks, batch_size=batch_size, jobs=jobs, **options)
