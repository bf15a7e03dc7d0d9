"""Reports of an evaluation store: Markdown tables and PNG curves (pillow only, no matplotlib).

``write_report(store, out)`` reads ``results.jsonl`` (see :mod:`tfxattr.evaluate`) and writes
``report.md`` (per model and method: the metric's paper aggregate, mean ± std, median [IQR], images
used and skipped), ``summary.json`` (the same rows) and ``plots/*.png`` (the aggregated curves of
every score that has one: SIC/AIC, insertion/deletion, POS/NEG). :func:`line_plot` is the small
PIL.ImageDraw line-plot helper (axes, ticks, grid, legend).
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

AGGREGATIONS = ("mean", "median")
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (0, 0, 0), (255, 215, 0))


# -- reading the store --------------------------------------------------------------------------------
@dataclass
class StoreView:
    """The records of a store, by kind; ``results`` deduplicated by key (first record wins)."""
    config: dict
    models: Dict[str, dict]
    metrics: Dict[str, dict]
    results: List[dict]


def load_store(path) -> StoreView:
    from .evaluate import read_records, result_key

    config, models, metrics, results, seen = {}, {}, {}, [], set()
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
    return StoreView(config, models, metrics, results)


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


def summarize(view: StoreView, aggregation: Optional[dict] = None) -> List[ScoreSummary]:
    """One :class:`ScoreSummary` per (model, method, metric, score), in the store's order.

    ``aggregation``: overrides of the metric's own aggregation, keyed by score ("aic") or
    "metric/score" ("sic_aic_idgi/aic"). A score with curves aggregates them pointwise, then takes
    the area (as PAIR and :meth:`MetricResult.aggregate` do); otherwise the values are reduced.
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
                how = aggregation.get(f"{metric}/{score}", aggregation.get(score, info["aggregation"]))
                rows.append(_summary(model, method, metric, score, scored, info, how, higher))
    return rows


def _summary(model, method, metric, score, records, info, how, higher) -> ScoreSummary:
    values = np.array([r["scores"][metric][score] for r in records if r["scores"][metric][score] is not None],
                      np.float64)
    reduce = np.mean if how == "mean" else np.median
    nan = float("nan")
    aggregate = float(reduce(values)) if len(values) else nan
    curve = info.get("curves", {}).get(score)
    if curve is not None and len(values):
        ys = np.array([r["curves"][metric][score] for r in records if r["scores"][metric][score] is not None],
                      np.float64)
        aggregate = float(curve["scale"] * np.trapezoid(reduce(ys, axis=0), np.asarray(curve["x"])))
    q1, med, q3 = np.percentile(values, [25, 50, 75]) if len(values) else (nan, nan, nan)
    return ScoreSummary(model, method, metric, score, len(values), len(records) - len(values), aggregate, how,
                        float(values.mean()) if len(values) else nan, float(values.std()) if len(values) else nan,
                        float(med), float(q1), float(q3), bool(higher))


def aggregate_curves(view: StoreView, model: str, metric: str, score: str, how: str) -> Dict[str, tuple]:
    """method -> (x, pointwise-aggregated y) of one score's curves for ``model``."""
    x = np.asarray(view.metrics[metric]["curves"][score]["x"])
    reduce = np.mean if how == "mean" else np.median
    out: Dict[str, list] = {}
    for r in view.results:
        if r["model"] == model and metric in r.get("curves", {}) and r["scores"][metric][score] is not None:
            out.setdefault(r["method"], []).append(r["curves"][metric][score])
    return {m: (x, reduce(np.asarray(ys, np.float64), axis=0)) for m, ys in out.items()}


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
    parts = [f"# {title}", "", _header(view, store_path, out_dir), "", _models_table(view)]
    if rows:
        parts += ["", "## Summary", "", "Each score aggregated as its paper does (column header: mean or median "
                  "over images; curves are aggregated pointwise, then integrated).", "", _summary_table(rows)]
    for metric in view.metrics:
        parts += ["", f"## {metric}", "", _metric_table([r for r in rows if r.metric == metric])]
        if plots:
            parts += [f"![{p}]({p})" for p in _plots(view, rows, metric, out_dir)]
    if extra_markdown:
        parts += ["", extra_markdown]
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")
    return path


def _header(view, store_path, out_dir) -> str:
    c = view.config
    lines = [f"Store: `{os.path.relpath(store_path, out_dir)}` ({len(view.results)} results). "
             f"Data: `{c.get('data')}`; target: {c.get('target')}; resize: {c.get('resize')}; "
             f"maps: {c.get('reduce')} channel reduction."]
    random = [m for m, r in view.models.items() if r.get("random_weights")]
    if random:
        lines += ["", f"> **WARNING: {', '.join(random)} ran with RANDOM weights: these numbers are meaningless "
                  "for judging attribution methods; they only show that the pipeline runs.**"]
    return "\n".join(lines)


def _models_table(view) -> str:
    body = [[m, r.get("weights") or "trained", r["images"], "–" if r.get("correct") is None else r["correct"],
             len(r["excluded"]) if r.get("correct_only") else "– (all kept)"] for m, r in view.models.items()]
    body += [[m, "?", "? (pass not finished)", "?", "?"] for m in dict.fromkeys(r["model"] for r in view.results)
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


def _metric_table(rows) -> str:
    body = [[r.model, r.method, f"{r.score} {arrow(r.higher_is_better)}", f"{fmt(r.aggregate)} ({r.aggregation})",
             f"{fmt(r.mean)} ± {fmt(r.std)}", f"{fmt(r.median)} [{fmt(r.q1)}, {fmt(r.q3)}]", r.n, r.skipped]
            for r in rows]
    return markdown_table(["model", "method", "score", "aggregate", "mean ± std", "median [IQR]", "images",
                           "skipped"], body)


def _plots(view, rows, metric, out_dir) -> List[str]:
    written = []
    for score in view.metrics[metric].get("curves", {}):
        for model in dict.fromkeys(r.model for r in rows if r.metric == metric and r.score == score):
            how = next(r.aggregation for r in rows if (r.metric, r.score, r.model) == (metric, score, model))
            curves = aggregate_curves(view, model, metric, score, how)
            if not curves:
                continue
            rel = os.path.join("plots", f"{_safe(model)}__{_safe(metric)}__{score}.png")
            scale = view.metrics[metric]["curves"][score]["scale"]
            line_plot([(m, x, scale * y) for m, (x, y) in curves.items()], os.path.join(out_dir, rel),
                      title=f"{score} ({how} over images), {model}", xlabel=_xlabel(metric, score), ylabel=score)
            written.append(rel)
    return written


def _xlabel(metric, score) -> str:
    if score in ("sic", "aic"):
        return "information level (normalised)"
    if score in ("pos", "neg"):
        return "fraction of pixels removed"
    return "fraction of pixels " + ("inserted" if "insertion" in score else "deleted")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_")


# -- a tiny line plot ---------------------------------------------------------------------------------
def nice_ticks(lo: float, hi: float, count: int = 5) -> List[float]:
    """About ``count`` round tick values covering [lo, hi] (steps 1, 2, 2.5 or 5 times a power of ten)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"tick range must be finite, got [{lo}, {hi}]")
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(lo / step + 1e-9) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(t, 12))
    return ticks


def line_plot(series, path, title: str = "", xlabel: str = "", ylabel: str = "", size=(800, 440)) -> str:
    """Draw ``series`` = [(label, x, y), ...] as lines with axes, ticks, grid and a legend; save a PNG.

    Non-finite y values break a line. Returns ``path``.
    """
    from PIL import Image, ImageDraw, ImageFont

    series = [(str(lab), np.asarray(x, np.float64), np.asarray(y, np.float64)) for lab, x, y in series]
    if not series:
        raise ValueError("series is empty: pass [(label, x, y), ...]")
    for lab, x, y in series:
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError(f"series {lab!r}: x and y must be 1-D of the same length, got {x.shape} and {y.shape}")
    xs = np.concatenate([x for _, x, _ in series])
    ys = np.concatenate([y[np.isfinite(y)] for _, _, y in series] + [np.zeros(0)])
    xt = nice_ticks(float(xs.min()), float(xs.max()))
    yt = nice_ticks(float(ys.min()) if len(ys) else 0.0, float(ys.max()) if len(ys) else 1.0)
    try:
        font = ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    width, height = size
    left, right, top, bottom = 64, 230, 34, 50
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    x0, x1, y0, y1 = left, width - right, top, height - bottom

    def px(x, y):
        return (x0 + (x - xt[0]) / (xt[-1] - xt[0]) * (x1 - x0), y1 - (y - yt[0]) / (yt[-1] - yt[0]) * (y1 - y0))

    for t in xt:
        X = px(t, yt[0])[0]
        draw.line([(X, y0), (X, y1)], fill=(232, 232, 232))
        draw.line([(X, y1), (X, y1 + 4)], fill="black")
        draw.text((X, y1 + 6), f"{t:g}", fill="black", font=font, anchor="ma")
    for t in yt:
        Y = px(xt[0], t)[1]
        draw.line([(x0, Y), (x1, Y)], fill=(232, 232, 232))
        draw.line([(x0 - 4, Y), (x0, Y)], fill="black")
        draw.text((x0 - 6, Y), f"{t:g}", fill="black", font=font, anchor="rm")
    draw.rectangle([x0, y0, x1, y1], outline="black")
    for k, (lab, x, y) in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        segment = []
        for xv, yv in zip(x, y):
            if np.isfinite(yv):
                segment.append(px(xv, yv))
            else:
                _polyline(draw, segment, color)
                segment = []
        _polyline(draw, segment, color)
        ly = y0 + 8 + 18 * k
        draw.line([(x1 + 12, ly), (x1 + 36, ly)], fill=color, width=3)
        draw.text((x1 + 42, ly), lab if len(lab) <= 26 else lab[:25] + "…", fill="black", font=font, anchor="lm")
    draw.text(((x0 + x1) / 2, 10), title, fill="black", font=font, anchor="ma")
    draw.text(((x0 + x1) / 2, height - 18), xlabel, fill="black", font=font, anchor="ma")
    draw.text((6, y0 - 22), ylabel, fill="black", font=font)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    img.save(path)
    return path


def _polyline(draw, points, color):
    if len(points) == 1:
        x, y = points[0]
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)
    elif len(points) > 1:
        draw.line(points, fill=color, width=2, joint="curve")
