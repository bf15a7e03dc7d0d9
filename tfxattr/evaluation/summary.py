"""The summaries of an evaluation store: per (model, method, metric, score) the paper's aggregate,
mean, std, median and IQR over images, and the aggregated curves. :mod:`.report` writes them as tables
and plots; the paper-table scripts in ``eval/`` read them directly."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from ..metrics.result import AGGREGATIONS, binned_curve
from .store import curve_values, iter_records, iter_results

#: file extensions of saved models, dropped from their short names
MODEL_EXTENSIONS = (".keras", ".h5", ".hdf5")


# -- reading the store --------------------------------------------------------------------------------
class StoredResults:
    """The result records of a store, streamed from its files at each iteration (each key once, the first
    record wins; curves as stored, see :func:`tfxattr.evaluation.store.curve_values`)."""

    def __init__(self, path):
        self.path = path

    def __iter__(self):
        return iter_results(self.path)

    def __len__(self):
        return sum(1 for _ in self)


@dataclass
class StoreView:
    """The records of a store, by kind; ``results``: the result records (a list, or :class:`StoredResults`
    streamed from the files), each key once; ``skipped``: image files that could not be read -> the reason."""
    config: dict
    models: Dict[str, dict]
    metrics: Dict[str, dict]
    results: Iterable[dict]
    skipped: Dict[str, str] = field(default_factory=dict)


def short_model_names(labels: Sequence[str]) -> Dict[str, str]:
    """Store label -> the name a report shows: a file's stem or a directory's name instead of its path
    (a weights path likewise), the label itself otherwise; labels whose short names collide stay whole."""
    def short(label):
        name, sep, options = label.partition(":")
        if os.path.dirname(name) or name.endswith(MODEL_EXTENSIONS):
            name = os.path.basename(name.rstrip("/" + os.sep)) or name
            name = name[: -len(os.path.splitext(name)[1])] if name.endswith(MODEL_EXTENSIONS) else name
        key, eq, value = options.partition("=")
        if eq and os.path.dirname(value):
            options = f"{key}={os.path.basename(value)}"
        return name + sep + options

    shorts = {label: short(label) for label in dict.fromkeys(labels)}
    counts = {}
    for s in shorts.values():
        counts[s] = counts.get(s, 0) + 1
    return {label: s if counts[s] == 1 else label for label, s in shorts.items()}


def load_store(path) -> StoreView:
    """The records of the store at ``path`` (``results.jsonl`` or its directory; part files included).

    Everything but the results is read now; ``results`` streams from the files when iterated. A model's
    record is its latest finished pass; without one, the per-shard passes of a distributed run are added up
    (:func:`merge_shards`)."""
    config, models, metrics, skipped, shards = {}, {}, {}, {}, {}
    for r in iter_records(path):
        kind = r.get("kind")
        if kind == "run":
            config = config or r["config"]
        elif kind == "model":
            models[r["model"]] = r  # the latest pass over the data (a later run may have read more images)
        elif kind == "shard":
            shards.setdefault(r["model"], {}).setdefault(r["shard"], r)
        elif kind == "metric":
            metrics.setdefault(r["metric"], r)
        elif kind == "skipped":
            skipped.setdefault(r["image"], r.get("reason", ""))
    for model, passes in shards.items():
        models.setdefault(model, merge_shards(passes.values()))
    return StoreView(config, models, metrics, StoredResults(path), skipped)


def merge_shards(shards) -> dict:
    """One model record from the "shard" records of a distributed pass (images, correct and exclusions
    added up, in shard order); ``finished``: every shard of the pass is there."""
    shards = sorted(shards, key=lambda r: r["shard"])
    first = shards[0]
    merged = {k: v for k, v in first.items() if k not in ("shard", "shards")}
    merged.update(kind="model", images=sum(r["images"] for r in shards),
                  correct=None if all(r.get("correct") is None for r in shards)
                  else sum(r.get("correct") or 0 for r in shards),  # a shard of unreadable files only: None
                  excluded=[i for r in shards for i in r["excluded"]],
                  finished=len(shards) == first.get("shards", len(shards)))
    return merged


# -- summaries ----------------------------------------------------------------------------------------
@dataclass
class ScoreSummary:
    """One score of one metric for one (model, method): the paper's aggregate and the spread."""
    model: str
    method: str
    metric: str
    score: str
    n: int
    skipped: int
    aggregate: float
    aggregation: str
    mean: float
    std: float
    median: float
    q1: float
    q3: float
    higher_is_better: bool
    #: how ``aggregate`` was formed from curves: "pointwise" (per-image curves aggregated pointwise, then
    #: the area), "binned" (IDGI Sec. 4.4: pooled points in bins), or "values" (no curve)
    estimator: str = "values"


def summarize(view: StoreView, aggregation: Optional[dict] = None) -> List[ScoreSummary]:
    """One :class:`ScoreSummary` per (model, method, metric, score), in the store's order.

    ``aggregation``: overrides of the metric's own aggregation, keyed by score ("aic") or
    "metric/score" ("sic_aic_idgi/aic"); without one, each score takes its own (:func:`score_aggregation`:
    SIC median, AIC mean). A score with curves aggregates them pointwise, then takes the area (as PAIR and
    :meth:`MetricResult.aggregate` do); a binned curve (IDGI) pools the stored points of its images in bins
    (:func:`tfxattr.metrics.result.binned_curve`); otherwise the values are reduced. One streaming pass over
    the results: per (model, method, score) only the values and what its curve aggregate needs are kept.
    """
    return [acc.summary() for acc in accumulate(view, aggregation).values()]


def accumulate(view: StoreView, aggregation: Optional[dict] = None, only=None) -> Dict[tuple, "_Scores"]:
    """(model, method, metric, score) -> its :class:`_Scores` after one pass over ``view.results``
    (``only``: a predicate on a record, to read part of the store)."""
    aggregation = aggregation or {}
    for value in aggregation.values():
        if value not in AGGREGATIONS:
            raise ValueError(f"aggregation values must be one of {AGGREGATIONS}, got {value!r}")
    hows = {(metric, score): _how(aggregation, info, metric, score)
            for metric, info in view.metrics.items() for score in info["higher_is_better"]}
    groups: Dict[tuple, Dict[tuple, _Scores]] = {}
    for r in view.results:
        if only is not None and not only(r):
            continue
        group = groups.setdefault((r["model"], r["method"]), {})
        for metric, info in view.metrics.items():
            if metric not in r["scores"]:
                continue
            for score in info["higher_is_better"]:
                key = (r["model"], r["method"], metric, score)
                acc = group.get(key) or group.setdefault(key, _Scores(key, info, hows[(metric, score)]))
                acc.add(r)
    accs = {k: a for group in groups.values() for k, a in group.items()}
    missing = [a for a in accs.values() if a.needs_curves]
    if missing:  # a binned score with images that stored no points: its pointwise curve, from a second pass
        for r in view.results:
            for a in missing:
                model, method, metric, score = a.key
                if (r["model"], r["method"]) == (model, method) and r["scores"].get(metric, {}).get(score) is not None:
                    a.add_curve(r)
    order = {(m, s): i for i, (m, s) in enumerate(hows)}  # in a group: metrics and scores in the store's order
    return {k: a for group in groups.values() for k, a in sorted(group.items(), key=lambda kv: order[kv[0][2:]])}


def _how(aggregation: dict, info: dict, metric: str, score: str) -> str:
    return aggregation.get(f"{metric}/{score}", aggregation.get(score, score_aggregation(info, score)))


class _Scores:
    """The running state of one (model, method, metric, score): per-image values, and the curve data its
    aggregate needs (a running sum for a pointwise mean, the curves for a pointwise median, the raw points
    of a binned curve)."""

    def __init__(self, key, info, how):
        self.key, self.info, self.how = key, info, how
        self.curve = info.get("curves", {}).get(key[3])
        self.x = None if self.curve is None else np.asarray(self.curve["x"], np.float64)
        self.bins = _bins(info, key[3]) if self.curve is not None else 0
        self.values, self.records, self.points, self.curves = [], 0, [], []
        self.curve_sum, self.curve_count, self.needs_curves = None, 0, False

    def add(self, r):
        self.records += 1
        metric, score = self.key[2:]
        if r["scores"][metric][score] is None:
            return
        self.values.append(r["scores"][metric][score])
        if self.curve is None:
            return
        if not self.bins:
            self.add_curve(r)
            return
        points = r.get("points", {}).get(metric, {}).get(score)
        if points is None:
            self.needs_curves = True  # pointwise curves of every image instead, from a second pass
        elif not self.needs_curves:
            self.points.append(np.asarray(points, np.float64).reshape(-1, 2))

    def add_curve(self, r):
        """Add the curve of a record that scored this score."""
        y = curve_values(r["curves"][self.key[2]][self.key[3]], self.x)
        if self.how == "mean":
            self.curve_sum = y if self.curve_sum is None else self.curve_sum + y
            self.curve_count += 1
        else:
            self.curves.append(y)

    def aggregated_curve(self):
        """(x, y, estimator) of the aggregated curve (None without a curve or kept image)."""
        if self.curve is None or not self.values:
            return None
        if self.bins and not self.needs_curves:
            pooled = np.concatenate(self.points)
            x, y = binned_curve(pooled[:, 0], pooled[:, 1], self.bins, self.how)
            return x, y, "binned"
        if self.how == "mean":
            return self.x, self.curve_sum / self.curve_count, "pointwise"
        return self.x, np.median(np.stack(self.curves), axis=0), "pointwise"

    def summary(self) -> ScoreSummary:
        model, method, metric, score = self.key
        values = np.array(self.values, np.float64)
        reduce = np.mean if self.how == "mean" else np.median
        nan = float("nan")
        aggregate = float(reduce(values)) if len(values) else nan
        estimator = "values"
        curve = self.aggregated_curve()
        if curve is not None:
            x, y, estimator = curve
            aggregate = float(self.curve["scale"] * np.trapezoid(y, x))
        q1, med, q3 = np.percentile(values, [25, 50, 75]) if len(values) else (nan, nan, nan)
        return ScoreSummary(model, method, metric, score, len(values), self.records - len(values), aggregate,
                            self.how, float(values.mean()) if len(values) else nan,
                            float(values.std()) if len(values) else nan, float(med), float(q1), float(q3),
                            bool(self.info["higher_is_better"][score]), estimator)


def score_aggregation(info: dict, score: str) -> str:
    """A score's own aggregation from a store's metric record: its ``score_aggregation`` entry, else a
    per-score ``aggregation`` option (sic_aic records {"sic": "median", "aic": "mean"} there), else the
    metric's ``aggregation`` (stores written before per-score aggregation existed)."""
    per_score = info.get("score_aggregation") or {}
    option = (info.get("options") or {}).get("aggregation")
    if score in per_score:
        return per_score[score]
    if isinstance(option, dict) and score in option:
        return option[score]
    return info["aggregation"]


def _bins(info: dict, score: str) -> int:
    """The number of bins of a binned (IDGI) curve from a metric record, 0 for a pointwise one."""
    curve = info.get("curves", {}).get(score) or {}
    options = info.get("options") or {}
    if curve.get("bins"):
        return int(curve["bins"])
    return int(options.get("bins") or 0) if options.get("estimator") == "binned" else 0


def aggregate_curves(view: StoreView, model: str, metric: str, score: str, how: str) -> Dict[str, tuple]:
    """method -> (x, aggregated y) of one score's curves for ``model`` (pointwise, or binned for IDGI's)."""
    info = view.metrics[metric]
    info = {**info, "higher_is_better": {score: info["higher_is_better"][score]}}
    accs = accumulate(replace(view, metrics={metric: info}), {f"{metric}/{score}": how},
                       only=lambda r: r["model"] == model and metric in r.get("curves", {}))
    curves = {a.key[1]: a.aggregated_curve() for a in accs.values()}
    return {m: c[:2] for m, c in curves.items() if c is not None}
