"""The results store: curves at their breakpoints, part files merged by the reader, old stores still read."""
import json
import os
import shutil
from dataclasses import asdict

import numpy as np
import pytest

from tfxattr import evaluation as ev
from tfxattr.evaluation import store as st
from tfxattr.evaluation.report import write_report
from tfxattr.evaluation.summary import load_store, summarize

OLD_STORE = os.path.join(os.path.dirname(__file__), "data", "store_v1")
GRID = np.append(np.linspace(0.0, 1.0, 1000, endpoint=False), 1.0)  # SIC/AIC's 1,001 points


def test_an_interpolated_curve_is_stored_at_its_breakpoints_and_rebuilt():
    rng = np.random.default_rng(0)
    for _ in range(20):  # PAIR's curves: a few measured (x, y) points, linear in between, on a fine grid
        knots_x = np.concatenate([[0.0], np.sort(rng.random(25)), [1.0]])
        knots_y = np.concatenate([[0.0], np.maximum.accumulate(rng.random(25)), [1.0]])
        y = np.interp(GRID, knots_x, knots_y)
        packed = st.pack_curve(GRID, y)
        assert isinstance(packed, dict) and len(packed["at"]) <= 2 * len(knots_x)
        assert np.max(np.abs(st.curve_values(packed, GRID) - y)) <= st.PACK_TOLERANCE
        assert len(json.dumps(packed)) < len(json.dumps(ev.rounded(y))) / 5


def test_curves_that_cannot_be_packed_are_stored_whole():
    smooth = np.sin(3 * GRID)  # bends at every point
    assert st.pack_curve(GRID, smooth) == ev.rounded(smooth)
    short = np.linspace(0, 1, st.PACK_MIN_POINTS - 1) ** 2  # insertion's 21 steps are its measured points
    assert st.pack_curve(np.linspace(0, 1, len(short)), short) == ev.rounded(short)
    assert st.pack_curve(GRID, np.full(len(GRID), np.nan)) is None  # an image the metric skipped
    assert np.isnan(st.curve_values(None, GRID)).all() and len(st.curve_values(None, GRID)) == len(GRID)
    assert np.isnan(st.curve_values([0.5, None], [0, 1])[1])
    with pytest.raises(ValueError, match="x values"):
        st.curve_values({"at": [0, 1], "y": [0, 1]})


def test_parts_are_merged_and_a_key_counts_once(tmp_path):
    record = {"kind": "result", "model": "m", "method": "ig", "image": "a", "target": 1, "scores": {"s": {"v": 1.0}}}
    with open(tmp_path / ev.STORE_NAME, "w") as f:
        f.write(json.dumps({"kind": "run", "config": {}}) + "\n" + json.dumps(record) + "\n")
    st.write_part(tmp_path, "shard0", [dict(record, scores={"s": {"v": 2.0}}), dict(record, image="b")])
    st.write_part(tmp_path, "shard0", [dict(record, image="b")])  # a shard written twice: two parts
    assert st.write_part(tmp_path, "empty", []) is None
    (tmp_path / "parts" / ".unfinished.jsonl.tmp").write_text('{"kind":"result"')  # a killed writer's file
    assert len(st.part_files(tmp_path)) == 2
    assert len([r for r in st.iter_records(tmp_path) if r["kind"] == "result"]) == 4
    results = list(st.load_results(tmp_path))
    assert [(r["image"], r["scores"]["s"]["v"]) for r in results] == [("a", 1.0), ("b", 1.0)]  # first record wins
    with ev.ResultStore(tmp_path / ev.STORE_NAME) as store:
        assert store.done == {("m", "ig", "a", 1), ("m", "ig", "b", 1)}
    with pytest.raises(ValueError, match="no results store"):
        next(st.load_results(tmp_path / "nothing"))


def test_a_store_in_the_old_format_loads_reports_and_resumes(tmp_path):
    """tests/evaluation/data/store_v1: written by the code before part files and packed curves (its
    make_fixture.py), with the summary.json that code wrote; today's reader gives the same numbers."""
    shutil.copytree(OLD_STORE, tmp_path, dirs_exist_ok=True)
    expected = json.load(open(tmp_path / "summary.json"))
    results = list(st.load_results(tmp_path))
    assert len(results) == 6 and {r["method"] for r in results} == {"gradient", "ig+idgi:steps=4"}
    grids = {r["metric"]: r for r in st.iter_records(tmp_path) if r["kind"] == "metric"}
    for r in results:
        assert {"model", "method", "image", "target", "scores"} <= r.keys()
        for metric, curves in r["curves"].items():
            for name, y in curves.items():
                assert len(y) == len(grids[metric]["curves"][name]["x"])
    rows = [asdict(r) for r in summarize(load_store(tmp_path / ev.STORE_NAME))]
    assert len(rows) == len(expected)
    for row, old in zip(rows, expected):
        for key, value in old.items():
            assert row[key] == (pytest.approx(value, abs=1e-12, nan_ok=True) if isinstance(value, float) else value)
    report = open(write_report(tmp_path / ev.STORE_NAME, tmp_path)).read()
    assert "(6 results)" in report and "| demo | gradient | sic " in report
    run = ev.evaluate("shapes:3", ["demo"], ["gradient", "ig+idgi:steps=4"],
                      ["insertion", "localization",
                       "sic_aic:thresholds=[0.1,0.3,0.6],min_pred_value=0.0,num_data_points=200",
                       "sic_aic_idgi:thresholds=[0.2,0.5,0.8],min_pred_value=0.0,bins=10"],
                      tmp_path, images_per_batch=2, progress=False, report=False, log=lambda m: None)
    assert (run.computed, run.already_done) == (0, 6)  # today's runner resumes an old store


def test_retired_metric_option_names_are_read_under_todays_names(tmp_path):
    """A store written before the glossary's renames (``insertion:base=blur``, SIC/AIC's ``blur_radius``) reads,
    reports and resumes as if written today: labels and options are read under the new names."""
    v1 = {r["name"]: r["options"] for r in st.iter_records(OLD_STORE) if r["kind"] == "metric"}
    assert v1["sic_aic_idgi"]["baseline"] == "blur" and v1["sic_aic_idgi"]["blur_sigma"] == 20.0
    assert v1["insertion"]["baseline"] == "black" and not {"base", "blur_radius"} & set(v1["sic_aic_idgi"])
    metrics = ["insertion:baseline=blur,blur_sigma=2.0,step=0.25"]
    options = dict(images_per_batch=2, progress=False, report=False, log=lambda m: None)
    assert ev.evaluate("shapes:2", ["demo"], ["gradient"], metrics, tmp_path, **options).computed == 2
    path = tmp_path / ev.STORE_NAME
    path.write_text(path.read_text().replace("baseline", "base"))  # as the code before the renames wrote it
    old_label, label = "insertion:base=blur,blur_sigma=2.0,step=0.25", metrics[0]
    assert old_label in path.read_text() and label not in path.read_text()
    records = list(st.iter_records(tmp_path))
    assert records[0]["config"]["metrics"] == {label: {"baseline": "blur", "blur_sigma": 2.0, "step": 0.25}}
    described = [r for r in records if r["kind"] == "metric"]
    assert [r["metric"] for r in described] == [label] and described[0]["options"]["baseline"] == "blur"
    assert all(set(r["scores"]) == set(r["curves"]) == {label} for r in st.load_results(tmp_path))
    run = ev.evaluate("shapes:2", ["demo"], ["gradient"], metrics, tmp_path, **options)
    assert (run.computed, run.already_done) == (0, 2)  # today's spelling resumes the old store
    rows = summarize(load_store(path))
    assert {row.metric for row in rows} == {label}
