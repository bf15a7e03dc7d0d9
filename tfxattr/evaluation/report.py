"""Reports of an evaluation store: Markdown tables and PNG curves.

``write_report(store, out)`` reads ``results.jsonl`` (written by :mod:`tfxattr.evaluation.runner`)
and writes ``report.md`` (per model and method: the metric's paper aggregate, mean ± std, median [IQR],
images used and skipped), ``summary.json`` (the same rows) and ``plots/*.png`` (the aggregated curves
of every score that has one, drawn by :mod:`tfxattr.evaluation.plots`, x-axes labelled from the metric's
``curve_axes``).
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from ..metrics import METRICS
from ..metrics.base import AGGREGATIONS, binned_curve
from .plots import line_plot
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
    (:func:`tfxattr.metrics.base.binned_curve`); otherwise the values are reduced. One streaming pass over
    the results: per (model, method, score) only the values and what its curve aggregate needs are kept.
    """
    return [acc.summary() for acc in _accumulate(view, aggregation).values()]


def _accumulate(view: StoreView, aggregation: Optional[dict] = None, only=None) -> Dict[tuple, "_Scores"]:
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
    accs = _accumulate(replace(view, metrics={metric: info}), {f"{metric}/{score}": how},
                       only=lambda r: r["model"] == model and metric in r.get("curves", {}))
    curves = {a.key[1]: a.aggregated_curve() for a in accs.values()}
    return {m: c[:2] for m, c in curves.items() if c is not None}


# -- Markdown -----------------------------------------------------------------------------------------
def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def arrow(higher: bool) -> str:
    return "↑" if higher else "↓"


def pivot_table(rows: Sequence[ScoreSummary], metric: str, score: str, columns: Sequence[str],
                row_key: str = "model", col_key: str = "method", digits: int = 3, scale: float = 1.0,
                column_names: Optional[Sequence[str]] = None) -> str:
    """A paper-layout table of one score: one row per ``row_key`` value, one column per ``columns`` entry."""
    cells = {(getattr(r, row_key), getattr(r, col_key)): r.aggregate for r in rows
             if r.metric == metric and r.score == score}
    keys = list(dict.fromkeys(getattr(r, row_key) for r in rows if r.metric == metric and r.score == score))
    body = [[k] + [fmt(scale * cells[(k, c)], digits) if (k, c) in cells else "–" for c in columns] for k in keys]
    return markdown_table([row_key] + list(column_names or columns), body)


# -- the report ---------------------------------------------------------------------------------------
def write_report(store_path, out_dir, aggregation: Optional[dict] = None, title: str = "Evaluation report",
                 extra_markdown: str = "", plots: bool = True) -> str:
    """Write ``report.md``, ``summary.json`` and ``plots/*.png`` for the store; return the report's path."""
    view = load_store(store_path)
    counted = []
    view.results = _Counting(view.results, counted)
    accs = _accumulate(view, aggregation)  # the one pass over the results: rows and curves
    rows = [a.summary() for a in accs.values()]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump([asdict(r) for r in rows], f, indent=1, allow_nan=True)
    scored = list(dict.fromkeys(k[0] for k in accs))
    names = short_model_names(list(view.models) + scored)
    shown = [replace(r, model=names[r.model]) for r in rows]  # short model names in the tables
    parts = [f"# {title}", "", _header(view, store_path, out_dir, names, sum(counted)), "",
             _models_table(view, names, scored)]
    if view.skipped:
        parts += ["", _skipped_section(view.skipped)]
    if rows:
        parts += ["", "## Summary", "", "Each score aggregated as its paper does (column header: mean or median "
                  "over images; curves are aggregated pointwise, then integrated).", "", _summary_table(shown)]
    for metric in view.metrics:
        parts += ["", f"## {metric}", "", _metric_table([r for r in shown if r.metric == metric])]
        if plots:
            parts += [f"![{p}]({p})" for p in _plots(view, accs, metric, out_dir, names)]
    if extra_markdown:
        parts += ["", extra_markdown]
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")
    return path


class _Counting:
    """Iterates ``results`` once, adding how many records it gave to ``counted``."""

    def __init__(self, results, counted):
        self.results, self.counted = results, counted

    def __iter__(self):
        n = 0
        for n, r in enumerate(self.results, 1):
            yield r
        self.counted.append(n)


def _header(view, store_path, out_dir, names, results: int) -> str:
    c = view.config
    lines = [f"Store: `{os.path.relpath(store_path, out_dir)}` ({results} results). "
             f"Data: `{c.get('data')}`; target: {c.get('target')}; resize: {c.get('resize')}; "
             f"maps: {c.get('reduce')} channel reduction."]
    random = [names[m] for m, r in view.models.items() if r.get("random_weights")]
    if random:
        lines += ["", f"> **WARNING: {', '.join(random)} ran with RANDOM weights: these numbers are meaningless "
                  "for judging attribution methods; they only show that the pipeline runs.**"]
    return "\n".join(lines)


def _models_table(view, names, scored) -> str:
    """One row per model; a distributed pass with shards still missing says so; a model with results but no
    record of its pass is marked unfinished."""
    body = [[names[m], r.get("weights") or "trained", f"{r['images']}" + ("" if r.get("finished", True) else
                                                                         " (pass not finished)"),
             "–" if r.get("correct") is None else r["correct"],
             len(r["excluded"]) if r.get("correct_only") else "– (all kept)"] for m, r in view.models.items()]
    body += [[names[m], "?", "? (pass not finished)", "?", "?"] for m in scored if m not in view.models]
    return markdown_table(["model", "weights", "images", "classified correctly", "excluded"], body)


def _summary_table(rows) -> str:
    columns = list(dict.fromkeys((r.metric, r.score, r.aggregation, r.higher_is_better) for r in rows))
    pairs = list(dict.fromkeys((r.model, r.method) for r in rows))
    cells = {(r.model, r.method, r.metric, r.score): r for r in rows}
    shared = {s for _, s, _, _ in columns if sum(c[1] == s for c in columns) > 1}
    header = ["model", "method"] + [f"{s}{f' [{m}]' if s in shared else ''} {arrow(h)} ({a})"
                                    for m, s, a, h in columns]
    body = [[model, method] + [fmt(cells[(model, method, m, s)].aggregate) if (model, method, m, s) in cells
                               else "–" for m, s, _, _ in columns] for model, method in pairs]
    return markdown_table(header, body)


#: how the aggregate of a score with a curve is named (ScoreSummary.estimator): not the per-image median
AGGREGATE_NAMES = {"pointwise": "area of the pointwise {how} curve", "binned": "area of the binned {how} curve"}


def _metric_table(rows) -> str:
    """One row per score; a score with a curve says that its aggregate is the area under the aggregated
    curve (:data:`AGGREGATE_NAMES`), which differs from the median of the per-image areas next to it."""
    body = [[r.model, r.method, f"{r.score} {arrow(r.higher_is_better)}", f"{fmt(r.aggregate)} ("
             + AGGREGATE_NAMES.get(getattr(r, "estimator", "values"), "{how}").format(how=r.aggregation) + ")",
             f"{fmt(r.mean)} ± {fmt(r.std)}", f"{fmt(r.median)} [{fmt(r.q1)}, {fmt(r.q3)}]", r.n, r.skipped]
            for r in rows]
    return markdown_table(["model", "method", "score", "aggregate", "mean ± std of per-image values",
                           "median [IQR] of per-image values", "images", "skipped"], body)


def _skipped_section(skipped: Dict[str, str]) -> str:
    """The image files the run could not read (left out of every score), with the reason."""
    body = [[f"`{image}`", reason.replace("|", "/")] for image, reason in skipped.items()]
    return "\n".join([f"## Skipped files ({len(skipped)})", "", "These files could not be read and are left out "
                      "of every score:", "", markdown_table(["file", "reason"], body)])


def _plots(view, accs, metric, out_dir, names=None) -> List[str]:
    """One PNG per (model, score with a curve) of ``metric``: every method's aggregated curve."""
    written = []
    for score in view.metrics[metric].get("curves", {}):
        for model in dict.fromkeys(k[0] for k in accs if k[2:] == (metric, score)):
            mine = [a for k, a in accs.items() if k[0] == model and k[2:] == (metric, score)]
            how = mine[0].how
            curves = {a.key[1]: c[:2] for a in mine for c in [a.aggregated_curve()] if c is not None}
            if not curves:
                continue
            shown = (names or {}).get(model, model)
            rel = os.path.join("plots", f"{_safe(shown)}__{_safe(metric)}__{score}.png")
            scale = view.metrics[metric]["curves"][score]["scale"]
            line_plot([(m, x, scale * y) for m, (x, y) in curves.items()], os.path.join(out_dir, rel),
                      title=f"{score} ({how} over images), {shown}", xlabel=curve_axis(view.metrics[metric], score),
                      ylabel=score)
            written.append(rel)
    return written


def curve_axis(info: dict, score: str) -> str:
    """The x-axis label of ``score``'s curve from a store's metric record (the metric's ``curve_axes``)."""
    axes = info.get("curve_axes")
    if axes is None:  # a store written before the record held the axes: ask the registry
        axes = METRICS[info["name"]].curve_axes if info.get("name") in METRICS else {}
    return axes.get(score, "")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_")
