"""``report.html``: an evaluation report as one self-contained page.

Everything is inside the file: pictures as base64 ``data:`` URIs, the style sheet in a ``<style>`` element,
no script and no link to anything outside, so the page reads the same mailed, archived or opened offline.
It holds the Markdown report's tables (each summary column's better value marked, by the score's declared
direction), the curves of ``plots/`` and each method's example maps (:mod:`.examples`). The tables are
given as (header, body) rows by :mod:`.report`; free Markdown (the header lines, a script's extra section)
is converted by :func:`markdown_html`, which knows the few constructs the reports write.
"""
from __future__ import annotations

import base64
import html
import io
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

HTML_NAME = "report.html"
#: the page's style: readable tables, pictures no wider than the page, the marked cells green and bold
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; line-height: 1.4; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; }
td.best { background: #dff3df; font-weight: bold; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
.note { color: #555; font-size: 0.9em; }
blockquote { border-left: 4px solid #d33; margin: 0.8em 0; padding: 0.2em 1em; background: #fff3f3; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""
#: what the summary table's aggregates are (both reports)
SUMMARY_NOTE = ("Each score aggregated as its paper does (column header: mean or median over images; curves are "
                "aggregated pointwise, then integrated).")
SKIPPED_NOTE = "These files could not be read and are left out of every score:"
#: what the mark of a summary cell means
BEST_NOTE = ("Green and bold: the better value of its column among the methods of the same model "
             "(↑ higher is better, ↓ lower is better, as the metric declares).")


@dataclass
class HtmlReport:
    """What :func:`write_html` puts on the page: Markdown ``header``; ``models``, ``skipped``: (header, body)
    tables; ``summary``: (header, body, best cells); ``metrics``: (name, (header, body), curve PNG paths
    relative to the output directory); ``examples``: an :class:`~.examples.ExampleMaps` or None."""
    title: str
    header: str
    models: Tuple[list, list]
    skipped: Tuple[list, list]
    summary: Tuple[list, list, set]
    metrics: List[tuple] = field(default_factory=list)
    extra_markdown: str = ""
    examples: Optional[object] = None
    model_names: Dict[str, str] = field(default_factory=dict)


def write_html(report: HtmlReport, out_dir) -> str:
    """Write ``report.html`` into ``out_dir`` (curve paths are read from there); return its path."""
    parts = [f"<h1>{html.escape(report.title)}</h1>", markdown_html(report.header, out_dir),
             html_table(*report.models)]
    if report.skipped[1]:
        parts += [f"<h2>Skipped files ({len(report.skipped[1])})</h2>",
                  f"<p>{SKIPPED_NOTE}</p>", html_table(*report.skipped)]
    if report.summary[1]:
        parts += ["<h2>Summary</h2>", f"<p>{html.escape(SUMMARY_NOTE)}</p>", f'<p class="note">{BEST_NOTE}</p>',
                  html_table(*report.summary)]
    for metric, table, curves in report.metrics:
        parts += [f"<h2>{html.escape(metric)}</h2>", html_table(*table)]
        parts += [_picture(os.path.join(out_dir, p), p) for p in curves]
    if report.examples is not None:
        parts += _examples(report.examples, report.model_names)
    if report.extra_markdown:
        parts.append(markdown_html(report.extra_markdown, out_dir))
    page = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
            f"<title>{html.escape(report.title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
            *parts, "</body>", "</html>"]
    path = os.path.join(out_dir, HTML_NAME)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(page) + "\n")
    return path


def html_table(header: Sequence, body: Sequence[Sequence], best=()) -> str:
    """A table; the (row, column) cells of ``body`` in ``best`` are marked (class "best")."""
    head = "".join(f"<th>{inline(h)}</th>" for h in header)
    marked = ' class="best"'
    rows = ["<tr>" + "".join(f'<td{marked if (i, j) in best else ""}>{inline(c)}</td>'
                             for j, c in enumerate(row)) + "</tr>" for i, row in enumerate(body)]
    return "\n".join(["<table>", f"<thead><tr>{head}</tr></thead>", "<tbody>", *rows, "</tbody>", "</table>"])


def inline(text) -> str:
    """Escaped text with Markdown's inline ``code`` and **bold**."""
    text = html.escape(str(text), quote=False).replace(" ↑", "\u00a0↑").replace(" ↓", "\u00a0↓")  # arrow by its name
    text = re.sub(r"`([^`]*)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure_png(fig) -> bytes:
    """A matplotlib Figure as RGB PNG bytes (drawn as :func:`tfxattr.visualize.save_png` draws it)."""
    from PIL import Image

    from ..visualize import figure_rgb

    buffer = io.BytesIO()
    Image.fromarray(figure_rgb(fig)).save(buffer, format="PNG")
    return buffer.getvalue()


def _picture(path: str, alt: str) -> str:
    """An <img> of the PNG file at ``path``, inline; a note when the file is not there."""
    if not os.path.isfile(path):
        return f'<p class="note">(picture {html.escape(alt)} not found)</p>'
    with open(path, "rb") as f:
        return f'<img src="{data_uri(f.read())}" alt="{html.escape(alt)}">'


def _examples(examples, model_names: Dict[str, str]) -> List[str]:
    """The example-maps section: one figure per (model, method), then the notes on what was not drawn."""
    arrow = "↑ higher is better" if examples.higher_is_better else "↓ lower is better"
    parts = ["<h2>Example maps</h2>",
             f"<p>Per method, the images it scored best and worst on by <code>{html.escape(examples.metric)}"
             f"</code> / <code>{html.escape(examples.score)}</code> ({arrow}; the first metric of the run), with "
             "their maps. The maps are drawn again for the report from the stored method, seed and class: a "
             "method that draws random noise or masks may differ from the scored maps in that noise.</p>"]
    for (model, method), fig in examples.figures.items():
        name = html.escape(f"{model_names.get(model, model)} / {method}")
        parts += [f"<h3>{name}</h3>", f'<img src="{data_uri(figure_png(fig))}" alt="example maps of {name}">']
    parts += [f'<p class="note">{html.escape(note)}</p>' for note in examples.notes]
    return parts


# -- the Markdown the reports write -------------------------------------------------------------------
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)]+)\)$")


def markdown_html(text: str, out_dir) -> str:
    """The reports' Markdown as HTML: headings, paragraphs, ``> `` quotes, ``- `` lists, ``|`` tables and
    ``![alt](path)`` pictures (embedded from ``out_dir``); inline code and bold (:func:`inline`)."""
    out, block, kind = [], [], None

    def close():
        if kind == "table":
            rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in block
                    if not re.fullmatch(r"\|[-:| ]+\|", line.strip())]
            out.append(html_table(rows[0], rows[1:]))
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{inline(line[2:])}</li>" for line in block) + "</ul>")
        elif kind == "quote":
            out.append("<blockquote>" + inline(" ".join(line.lstrip("> ") for line in block)) + "</blockquote>")
        elif kind == "text":
            out.append(f"<p>{inline(' '.join(block))}</p>")
        block.clear()

    for line in text.splitlines():
        stripped = line.strip()
        heading = re.match(r"^(#{1,6}) (.*)$", stripped)
        image = _IMAGE.match(stripped)
        new = ("table" if stripped.startswith("|") else "list" if stripped.startswith("- ") else
               "quote" if stripped.startswith(">") else "text" if stripped and not (heading or image) else None)
        if new != kind or new is None:
            close()
            kind = new
        if heading:
            out.append(f"<h{len(heading.group(1))}>{inline(heading.group(2))}</h{len(heading.group(1))}>")
        elif image:
            out.append(_picture(os.path.join(out_dir, image.group(2)), image.group(1)))
        elif new:
            block.append(stripped)
    close()
    return "\n".join(out)
