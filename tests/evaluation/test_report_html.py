"""``report.html``: one self-contained page (tables with the better values marked, curves, example maps), checked
by parsing it and, where chromium is installed, by opening it in a headless browser."""
import base64
import io
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from tfxattr import evaluation as ev
from tfxattr.evaluation.report_html import HTML_NAME, markdown_html

METHODS = ["gradient", "ig:steps=4"]
METRICS = ["insertion", "deletion"]
DATA_URI = "data:image/png;base64,"
#: seconds chromium may take to load and draw the page (it starts in about 2 s)
BROWSER_SECONDS = 120
#: a screenshot pixel darker than this (0-255 grey) is ink on the white page
INK = 200


class Page(HTMLParser):
    """The parts of a page the tests read: tables (rows of (text, class) cells), images, headings, and every
    attribute value that could fetch something (src, href)."""

    def __init__(self, text):
        super().__init__()
        self.tables, self.images, self.headings, self.links, self.tags = [], [], [], [], []
        self._cell = self._heading = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.links += [v for k, v in attrs.items() if k in ("src", "href")]
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ["", attrs.get("class")]
        elif tag == "img":
            self.images.append(attrs)
        elif tag in ("h1", "h2", "h3"):
            self._heading = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(tuple(self._cell))
            self._cell = None
        elif tag in ("h1", "h2", "h3"):
            self.headings.append(self._heading)
            self._heading = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data
        if self._heading is not None:
            self._heading += data


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    summary = ev.evaluate("shapes:5", ["demo"], METHODS, METRICS, out, progress=False, log=lambda m: None)
    return out, summary


def decoded(uri: str) -> Image.Image:
    assert uri.startswith(DATA_URI), uri[:40]
    image = Image.open(io.BytesIO(base64.b64decode(uri[len(DATA_URI):])))
    image.load()
    return image


def test_eval_writes_a_self_contained_html_report(run):
    out, summary = run
    path = out / HTML_NAME
    text = path.read_text(encoding="utf-8")
    page = Page(text)
    assert "http://" not in text and "https://" not in text and "script" not in page.tags and "link" not in page.tags
    assert all(link.startswith(DATA_URI) for link in page.links)  # nothing is fetched from elsewhere
    curves = [i for i in page.images if i["alt"].startswith("plots/")]
    assert len(curves) == len(os.listdir(out / "plots")) == 4  # insertion, deletion and their ratios
    assert all(decoded(i["src"]).size[0] > 100 for i in page.images)
    assert {"Summary", "insertion", "deletion", "Example maps"} <= set(page.headings)
    assert [h for h in page.headings if h.startswith("demo / ")] == [f"demo / {m}" for m in METHODS]
    assert len(page.tables) >= 4  # models, summary, one per metric


def test_eval_report_only_rebuilds_both_reports_and_names_them(run, capsys):
    from tfxattr.cli import main

    out, _ = run
    (out / HTML_NAME).unlink()
    assert main(["eval", "--data", "shapes:5", "--methods", "x", "--metrics", "x", "--out", str(out),
                 "--report-only"]) == 0
    assert capsys.readouterr().out.split() == [str(out / "report.md"), str(out / HTML_NAME)]
    assert (out / HTML_NAME).is_file()


def test_the_better_value_of_each_summary_column_is_marked_by_its_direction(run):
    page = Page((run[0] / HTML_NAME).read_text(encoding="utf-8"))
    summary = next(t for t in page.tables if t[0][:2] == [("model", None), ("method", None)] and len(t[0]) > 3)
    header, rows = [c[0] for c in summary[0]], summary[1:]
    assert len(rows) == len(METHODS)
    for j, name in enumerate(header[2:], 2):
        values = [float(row[j][0]) for row in rows]
        marked = [float(row[j][0]) for row in rows if row[j][1] == "best"]
        better = max(values) if "↑" in name else min(values)
        assert "↑" in name or "↓" in name
        assert marked and set(marked) == {better}, (name, values, marked)
    assert ("↓" in header[4]) and header[4].startswith("deletion")  # deletion: lower is better


def test_example_maps_show_the_best_and_the_worst_images_by_the_first_metric(run):
    out, _ = run
    from tfxattr.evaluation.examples import main_score, pick_examples
    from tfxattr.evaluation.summary import load_store

    view = load_store(out / ev.STORE_NAME)
    assert main_score(view) == ("insertion", "insertion", True)
    picks = pick_examples(view, "insertion", "insertion", True, per_end=2)
    results = [r for r in ev.read_records(out / ev.STORE_NAME) if r["kind"] == "result" and r["method"] == "gradient"]
    ranked = sorted(results, key=lambda r: -r["scores"]["insertion"]["insertion"])
    chosen = picks[("demo", "gradient")]
    assert [e.place for e in chosen] == ["best 1", "best 2", "worst 2", "worst 1"]
    assert [e.image for e in chosen] == [ranked[i]["image"] for i in (0, 1, -2, -1)]
    few = pick_examples(view, "deletion", "deletion", False, per_end=3)[("demo", "gradient")]
    assert [e.place for e in few] == [f"rank {i} of 5" for i in range(1, 6)]  # lower is better: ascending
    assert [e.value for e in few] == sorted(e.value for e in few)


def test_a_model_that_cannot_be_loaded_again_is_a_note_not_a_failure(tmp_path, run):
    out, _ = run
    records = [r for r in ev.read_records(out / ev.STORE_NAME)]
    for r in records:
        if r.get("model") == "demo":
            r["model"] = "gone/model.keras"
    with open(tmp_path / ev.STORE_NAME, "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
    ev.write_report(tmp_path / ev.STORE_NAME, tmp_path)
    page = Page((tmp_path / HTML_NAME).read_text(encoding="utf-8"))
    assert "Example maps" in page.headings and not [h for h in page.headings if h.startswith("model / ")]
    assert "could not be loaded again" in (tmp_path / HTML_NAME).read_text(encoding="utf-8")


def test_extra_markdown_is_converted_with_its_pictures_inline(tmp_path):
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(tmp_path / "pic.png")
    text = markdown_html("## AggAtt\n\n![pic.png](pic.png)\n\n- a `note`\n- **two**\n\n| a | b |\n|---|---|\n| 1 | 2 |",
                         tmp_path)
    page = Page(text)
    assert page.headings == ["AggAtt"] and decoded(page.images[0]["src"]).size == (8, 8)
    assert "<li>a <code>note</code></li><li><strong>two</strong></li>" in text
    assert page.tables == [[[("a", None), ("b", None)], [("1", None), ("2", None)]]]


# -- in a browser ---------------------------------------------------------------------------------------
#: appended to a copy of the page: the browser records on <body> how many pictures it decoded
COUNT_DECODED = ("<script>window.addEventListener('load', () => { const all = [...document.images]; "
                 "document.body.dataset.images = all.length; "
                 "document.body.dataset.decoded = all.filter(i => i.complete && i.naturalWidth > 0).length; });"
                 "</script>")


def chromium(*args):
    return subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", *args], capture_output=True,
                          text=True, timeout=BROWSER_SECONDS)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not on PATH (apt-get install chromium)")
def test_the_page_renders_in_a_browser_with_every_picture_decoded(run, tmp_path):
    out, _ = run
    text = (out / HTML_NAME).read_text(encoding="utf-8")
    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1200,2000", (out / HTML_NAME).as_uri())
    grey = np.asarray(Image.open(shot).convert("L"))
    assert grey.shape == (2000, 1200) and (grey < INK).mean() > 0.01 and grey.std() > 10  # not a blank page
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", COUNT_DECODED + "</body>"), encoding="utf-8")
    dom = chromium("--virtual-time-budget=10000", "--dump-dom", probe.as_uri()).stdout
    images = len(Page(text).images)
    assert images > 4 and f'data-images="{images}"' in dom and f'data-decoded="{images}"' in dom, dom[-300:]
