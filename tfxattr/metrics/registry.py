"""The metric registry: :data:`METRICS` (name -> :class:`MetricSpec`), :func:`register_metric`, and
:func:`compute`, the door every caller goes through (the evaluation runner included).

A metric's capabilities are declared where it is registered (``consumes``, ``needs_masks``,
``uses_labels``, ``curve_axes``, ``parallel``); its options are checked in one place,
:meth:`MetricSpec.check_options`, which also refuses the option names the glossary retired
(:data:`tfxattr.checks.RENAMED`, e.g. "metric 'insertion': option 'base' was renamed 'baseline'").
See the package docstring (``tfxattr.metrics``) for the calling convention.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

from ..checks import boolean, did_you_mean, one_of, renamed
from ..models.options import takes_model_options
from ..parallel import WorkerPool, resolve_jobs
from ..registry import Registry
from .inputs import METRIC_MODEL_DEFAULTS, metric_model
from .result import MetricResult

#: the arguments of the calling convention besides ``model, images, maps`` (an old name of one is refused too)
CALL_ARGUMENTS = ("targets", "masks", "batch_size", "jobs")

#: what a metric scores: attribution maps of plain images, maps of grid images (Rao et al.), the model
#: alone (no built-in metric; the evaluation runner refuses it), or the Explanation (passed as ``maps``: the
#: attribution with its channels and the method that made it, which the metric re-runs: sensitivity on
#: perturbed images, the sanity checks on a changed model)
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

    def check_options(self, options) -> None:
        """Refuse what this metric does not take: a retired option name with the name that replaced it
        (:data:`tfxattr.checks.RENAMED`), any other unknown name with the closest valid ones."""
        defaults = self.defaults
        renamed(options, {*defaults, *CALL_ARGUMENTS}, f"metric {self.name!r}")
        bad = sorted(set(options) - set(defaults))
        if bad:
            hints = "".join(did_you_mean(b, defaults) for b in bad)
            raise ValueError(f"unknown option(s) {bad} for metric {self.name!r}{hints}; "
                             f"valid options: {', '.join(sorted(defaults))}")

    def __call__(self, model, images, maps, targets=None, masks=None, batch_size=32, jobs=None,
                 **options) -> MetricResult:
        """Run the metric; ``jobs`` (processes, None = every available core, or a run's
        :class:`~tfxattr.parallel.WorkerPool`) reaches only ``parallel`` metrics: the others run here."""
        self.check_options(options)
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
    renamed(preset, options, f"metric {name!r}")
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
    summary = summary or (fn.__doc__ or "").strip().partition("\n")[0]
    if not summary:
        raise ValueError(f"metric {name!r}: give a summary (one line); {fn.__name__} has no docstring to take it from")
    spec = MetricSpec(name, fn, dict(preset), summary, consumes, boolean(needs_masks, "needs_masks"), uses_labels,
                      curve_axes, parallel)
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
