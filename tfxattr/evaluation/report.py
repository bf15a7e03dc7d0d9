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
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..metrics import METRICS
from ..metrics.base import AGGREGATIONS, binned_curve
from .plots import line_plot
from .store import read_records, result_key

#: file extensions of saved models, dropped from their short names
MODEL_EXTENSIONS = (".keras", ".h5", ".hdf5")


# -- reading the store --------------------------------------------------------------------------------
@dataclass
class StoreView:
    """The records of a store, by kind; ``results`` deduplicated by key (first record wins);
    ``skipped``: image files that could not be read -> the reason."""
    config: dict
    models: Dict[str, dict]
    metrics: Dict[str, dict]
    results: List[dict]
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
    """The records of the store at ``path`` (a torn last line is ignored)."""
    config, models, metrics, results, seen, skipped = {}, {}, {}, [], set(), {}
    for r in read_records(path):
        kind = r.get("kind")
        if kind == "run":
            config = config or r["config"]
        elif kind == "model":
            models[r["model"]] = r  # the latest pass over the data (a later run may have read more images)
        elif kind == "metric":
            metrics.setdefault(r["metric"], r)
        elif kind == "result" and result_key(r) not in seen:
            seen.add(result_key(r))
            results.append(r)
        elif kind == "skipped":
            skipped.setdefault(r["image"], r.get("reason", ""))
    return StoreView(config, models, metrics, results, skipped)


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
    (:func:`tfxattr.metrics.base.binned_curve`); otherwise the values are reduced.
    """
    aggregation = aggregation or {}
    for value in aggregation.values():
        if value not in AGGREGATIONS:
            raise ValueError(f"aggregation values must be one of {AGGREGATIONS}, got {value!r}")
    groups: Dict[tuple, List[dict]] = {}
    for r in view.results:
        groups.setdefault((r["model"], r["method"]), []).append(r)
    rows = []
    for (model, method), records in groups.items():
        for metric, info in view.metrics.items():
            scored = [r for r in records if metric in r["scores"]]
            if not scored:
                continue
            for score, higher in info["higher_is_better"].items():
                how = aggregation.get(f"{metric}/{score}", aggregation.get(score, score_aggregation(info, score)))
                rows.append(_summary(model, method, metric, score, scored, info, how, higher))
    return rows


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


def _curve_aggregate(records, metric, score, info, how):
    """(x, y, estimator) of one score's aggregated curve over ``records`` (that scored it)."""
    curve = info["curves"][score]
    bins = _bins(info, score)
    points = [r.get("points", {}).get(metric, {}).get(score) for r in records]
    if bins and points and all(p is not None for p in points):
        pooled = np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in points])
        x, y = binned_curve(pooled[:, 0], pooled[:, 1], bins, how)
        return x, y, "binned"
    ys = np.array([r["curves"][metric][score] for r in records], np.float64)
    return np.asarray(curve["x"]), (np.mean if how == "mean" else np.median)(ys, axis=0), "pointwise"


def _summary(model, method, metric, score, records, info, how, higher) -> ScoreSummary:
    scored = [r for r in records if r["scores"][metric][score] is not None]
    values = np.array([r["scores"][metric][score] for r in scored], np.float64)
    reduce = np.mean if how == "mean" else np.median
    nan = float("nan")
    aggregate = float(reduce(values)) if len(values) else nan
    estimator = "values"
    curve = info.get("curves", {}).get(score)
    if curve is not None and len(values):
        x, y, estimator = _curve_aggregate(scored, metric, score, info, how)
        aggregate = float(curve["scale"] * np.trapezoid(y, x))
    q1, med, q3 = np.percentile(values, [25, 50, 75]) if len(values) else (nan, nan, nan)
    return ScoreSummary(model, method, metric, score, len(values), len(records) - len(values), aggregate, how,
                        float(values.mean()) if len(values) else nan, float(values.std()) if len(values) else nan,
                        float(med), float(q1), float(q3), bool(higher), estimator)


def aggregate_curves(view: StoreView, model: str, metric: str, score: str, how: str) -> Dict[str, tuple]:
    """method -> (x, aggregated y) of one score's curves for ``model`` (pointwise, or binned for IDGI's)."""
    out: Dict[str, list] = {}
    for r in view.results:
        if r["model"] == model and metric in r.get("curves", {}) and r["scores"][metric][score] is not None:
            out.setdefault(r["method"], []).append(r)
    info = view.metrics[metric]
    return {m: _curve_aggregate(rs, metric, score, info, how)[:2] for m, rs in out.items()}


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
    rows = summarize(view, aggregation)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump([asdict(r) for r in rows], f, indent=1, allow_nan=True)
    names = short_model_names(list(view.models) + [r["model"] for r in view.results])
    shown = [replace(r, model=names[r.model]) for r in rows]  # short model names in the tables
    parts = [f"# {title}", "", _header(view, store_path, out_dir, names), "", _models_table(view, names)]
    if view.skipped:
        parts += ["", _skipped_section(view.skipped)]
    if rows:
        parts += ["", "## Summary", "", "Each score aggregated as its paper does (column header: mean or median "
                  "over images; curves are aggregated pointwise, then integrated).", "", _summary_table(shown)]
    for metric in view.metrics:
        parts += ["", f"## {metric}", "", _metric_table([r for r in shown if r.metric == metric])]
        if plots:
            parts += [f"![{p}]({p})" for p in _plots(view, rows, metric, out_dir, names)]
    if extra_markdown:
        parts += ["", extra_markdown]
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")
    return path


def _header(view, store_path, out_dir, names) -> str:
    c = view.config
    lines = [f"Store: `{os.path.relpath(store_path, out_dir)}` ({len(view.results)} results). "
             f"Data: `{c.get('data')}`; target: {c.get('target')}; resize: {c.get('resize')}; "
             f"maps: {c.get('reduce')} channel reduction."]
    random = [names[m] for m, r in view.models.items() if r.get("random_weights")]
    if random:
        lines += ["", f"> **WARNING: {', '.join(random)} ran with RANDOM weights: these numbers are meaningless "
                  "for judging attribution methods; they only show that the pipeline runs.**"]
    return "\n".join(lines)


def _models_table(view, names) -> str:
    body = [[names[m], r.get("weights") or "trained", r["images"], "–" if r.get("correct") is None else r["correct"],
             len(r["excluded"]) if r.get("correct_only") else "– (all kept)"] for m, r in view.models.items()]
    body += [[names[m], "?", "? (pass not finished)", "?", "?"] for m in dict.fromkeys(r["model"] for r in view.results)
             if m not in view.models]
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


def _plots(view, rows, metric, out_dir, names=None) -> List[str]:
    written = []
    for score in view.metrics[metric].get("curves", {}):
        for model in dict.fromkeys(r.model for r in rows if r.metric == metric and r.score == score):
            how = next(r.aggregation for r in rows if (r.metric, r.score, r.model) == (metric, score, model))
            curves = aggregate_curves(view, model, metric, score, how)
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
