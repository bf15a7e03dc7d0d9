"""Reports of an evaluation store: Markdown and HTML tables, PNG curves, example maps (the numbers come
from :mod:`.summary`).

``write_report(store, out)`` reads ``results.jsonl`` (written by :mod:`tfxattr.evaluation.runner`)
and writes ``report.md`` (per model and method: the metric's paper aggregate, mean ± std, median [IQR],
images used and skipped), ``summary.json`` (the same rows), ``plots/*.png`` (the aggregated curves
of every score that has one, drawn by :mod:`tfxattr.evaluation.plots`, x-axes labelled from the metric's
``curve_axes``) and ``report.html``: the same tables with each column's better value marked, the curves
and each method's best and worst images by the main score (:mod:`.examples`), in one self-contained page
(:mod:`.report_html`).
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, replace
from typing import Dict, List, Optional, Sequence

from ..metrics import METRICS
from .plots import line_plot
from .report_html import SKIPPED_NOTE, SUMMARY_NOTE, HtmlReport, write_html
from .summary import ScoreSummary, accumulate, load_store, short_model_names


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
                 extra_markdown: str = "", plots: bool = True, examples: bool = True, data=None) -> str:
    """Write ``report.md``, ``report.html``, ``summary.json`` and ``plots/*.png`` for the store; return the
    Markdown report's path. ``examples`` (with ``plots``): the HTML report's example maps, drawn again from
    the run's data (``data``: when the store's name of it cannot be read again, :mod:`.examples`)."""
    view = load_store(store_path)
    counted = []
    view.results = _Counting(view.results, counted)
    accs = accumulate(view, aggregation)  # the one pass over the results: rows and curves
    view.results = view.results.results
    rows = [a.summary() for a in accs.values()]
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump([asdict(r) for r in rows], f, indent=1, allow_nan=True)
    scored = list(dict.fromkeys(k[0] for k in accs))
    names = short_model_names(list(view.models) + scored)
    shown = [replace(r, model=names[r.model]) for r in rows]  # short model names in the tables
    html = HtmlReport(title, _header(view, store_path, out_dir, names, sum(counted)),
                      _models_rows(view, names, scored), _skipped_rows(view.skipped), _summary_grid(shown),
                      extra_markdown=extra_markdown)
    parts = [f"# {title}", "", html.header, "", markdown_table(*html.models)]
    if view.skipped:
        parts += ["", _skipped_section(view.skipped)]
    if rows:
        parts += ["", "## Summary", "", SUMMARY_NOTE, "", markdown_table(*html.summary[:2])]
    for metric in view.metrics:
        table = _metric_rows([r for r in shown if r.metric == metric])
        curves = _plots(view, accs, metric, out_dir, names) if plots else []
        html.metrics.append((metric, table, curves))
        parts += ["", f"## {metric}", "", markdown_table(*table)] + [f"![{p}]({p})" for p in curves]
    if extra_markdown:
        parts += ["", extra_markdown]
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")
    if plots and examples and rows:
        from .examples import example_maps

        html.examples = example_maps(view, data)
        html.model_names = names
    write_html(html, out_dir)
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


def _models_rows(view, names, scored):
    """(header, body) of the models table: one row per model; a distributed pass with shards still missing
    says so; a model with results but no record of its pass is marked unfinished."""
    body = [[names[m], r.get("weights") or "trained", f"{r['images']}" + ("" if r.get("finished", True) else
                                                                         " (pass not finished)"),
             "–" if r.get("correct") is None else r["correct"],
             len(r["excluded"]) if r.get("correct_only") else "– (all kept)"] for m, r in view.models.items()]
    body += [[names[m], "?", "? (pass not finished)", "?", "?"] for m in scored if m not in view.models]
    return ["model", "weights", "images", "classified correctly", "excluded"], body


def _summary_grid(rows):
    """(header, body, best) of the summary table: one row per (model, method), one column per score;
    ``best``: the (row, column) cells of body holding their column's better value among the methods of the
    same model (by the score's declared direction; marked when a model has two or more values to compare)."""
    columns = list(dict.fromkeys((r.metric, r.score, r.aggregation, r.higher_is_better) for r in rows))
    pairs = list(dict.fromkeys((r.model, r.method) for r in rows))
    cells = {(r.model, r.method, r.metric, r.score): r for r in rows}
    shared = {s for _, s, _, _ in columns if sum(c[1] == s for c in columns) > 1}
    header = ["model", "method"] + [f"{s}{f' [{m}]' if s in shared else ''} {arrow(h)} ({a})"
                                    for m, s, a, h in columns]
    body = [[model, method] + [fmt(cells[(model, method, m, s)].aggregate) if (model, method, m, s) in cells
                               else "–" for m, s, _, _ in columns] for model, method in pairs]
    best = set()
    for j, (metric, score, _, higher) in enumerate(columns, 2):
        for model in dict.fromkeys(model for model, _ in pairs):
            values = {i: cells[(model, method, metric, score)].aggregate for i, (m, method) in enumerate(pairs)
                      if m == model and (model, method, metric, score) in cells}
            values = {i: v for i, v in values.items() if v is not None and math.isfinite(v)}
            if len(values) > 1:
                top = (max if higher else min)(values.values())
                best |= {(i, j) for i, v in values.items() if fmt(v) == fmt(top)}  # ties as the table shows them
    return header, body, best


#: how the aggregate of a score with a curve is named (ScoreSummary.estimator): not the per-image median
AGGREGATE_NAMES = {"pointwise": "area of the pointwise {how} curve", "binned": "area of the binned {how} curve"}


def _metric_rows(rows):
    """(header, body) of a metric's table: one row per score; a score with a curve says that its aggregate
    is the area under the aggregated curve (:data:`AGGREGATE_NAMES`), which differs from the median of the
    per-image areas next to it."""
    body = [[r.model, r.method, f"{r.score} {arrow(r.higher_is_better)}", f"{fmt(r.aggregate)} ("
             + AGGREGATE_NAMES.get(getattr(r, "estimator", "values"), "{how}").format(how=r.aggregation) + ")",
             f"{fmt(r.mean)} ± {fmt(r.std)}", f"{fmt(r.median)} [{fmt(r.q1)}, {fmt(r.q3)}]", r.n, r.skipped]
            for r in rows]
    return ["model", "method", "score", "aggregate", "mean ± std of per-image values",
            "median [IQR] of per-image values", "images", "skipped"], body


def _skipped_rows(skipped: Dict[str, str]):
    """(header, body) of the image files the run could not read, with the reason."""
    return ["file", "reason"], [[f"`{image}`", reason.replace("|", "/")] for image, reason in skipped.items()]


def _skipped_section(skipped: Dict[str, str]) -> str:
    """The image files the run could not read (left out of every score), with the reason."""
    return "\n".join([f"## Skipped files ({len(skipped)})", "", SKIPPED_NOTE, "",
                      markdown_table(*_skipped_rows(skipped))])


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
