"""The report as people read it: short model names, what the SIC "median" is, the progress bar's names."""
import json

import numpy as np

from tfxattr import evaluation as ev
from tfxattr.evaluation.report import write_report
from tfxattr.evaluation.summary import short_model_names


def test_models_are_named_by_their_short_name(tmp_path):
    names = short_model_names(["/data/models/my_net.keras", "resnet50:weights=/w/resnet50_custom.h5", "demo",
                               "/a/twin.keras", "/b/twin.keras", "/data/saved_model_dir/"])
    assert names["/data/models/my_net.keras"] == "my_net"
    assert names["resnet50:weights=/w/resnet50_custom.h5"] == "resnet50:weights=resnet50_custom.h5"
    assert names["demo"] == "demo" and names["/data/saved_model_dir/"] == "saved_model_dir"
    assert names["/a/twin.keras"] == "/a/twin.keras" and names["/b/twin.keras"] == "/b/twin.keras"  # collide


def test_the_report_of_a_model_file_shows_its_stem(tmp_path, demo_model):
    path = tmp_path / "models" / "my_net.keras"
    path.parent.mkdir()
    demo_model.save(path)
    summary = ev.evaluate("shapes:2", [str(path)], ["gradient"], ["insertion"], tmp_path / "out",
                          progress=False, log=lambda m: None)
    assert {r["model"] for r in ev.read_records(summary.store) if r["kind"] == "result"} == {str(path)}
    text = open(summary.report).read()
    assert "| my_net |" in text and str(path.parent) not in text


def write_store(path, curves, aggregation="median"):
    """A store with one curve metric (sic, aic) scored on the images' ``curves`` (x = 0, 0.5, 1)."""
    x = [0.0, 0.5, 1.0]
    records = [{"kind": "run", "config": {"data": "toy"}},
               {"kind": "metric", "metric": "sic_aic", "name": "sic_aic", "options": {}, "aggregation": aggregation,
                "higher_is_better": {"sic": True, "aic": True},
                "curves": {k: {"x": x, "scale": 1.0} for k in ("sic", "aic")},
                "curve_axes": {k: "information level" for k in ("sic", "aic")}}]
    for i, y in enumerate(curves):
        area = float(np.trapezoid(y, x))
        records.append({"kind": "result", "model": "demo", "method": "ig", "image": f"{i}", "target": 0,
                        "label": 0, "predicted": 0, "probability": 0.9, "seconds": 0.1,
                        "scores": {"sic_aic": {"sic": area, "aic": area}}, "skipped": {"sic_aic": {}},
                        "curves": {"sic_aic": {"sic": list(y), "aic": list(y)}}})
    with open(path, "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))


def test_the_sic_row_says_which_median_it_shows(tmp_path):
    curves = [[0, 1, 0], [1, 0, 0], [0, 0, 1]]  # areas 0.5, 0.25, 0.25; the pointwise median curve is 0
    write_store(tmp_path / "results.jsonl", curves)
    report = open(write_report(tmp_path / "results.jsonl", tmp_path, plots=False)).read()
    sic = next(line for line in report.splitlines() if line.startswith("| demo | ig | sic "))
    assert "0.000 (area of the pointwise median curve)" in sic  # the aggregate, said to be the curve's area
    assert "| median [IQR] of per-image values |" in report
    assert "0.250 [0.250, 0.375]" in sic  # the median of the per-image areas, labelled as such


def test_the_progress_bar_names_the_method_as_the_user_did(tmp_path, capsys):
    ev.evaluate("shapes:2", ["demo"], ["ig+idgi:steps=2"], ["insertion"], tmp_path, progress=True, report=False,
                log=lambda m: None)
    err = capsys.readouterr().err
    assert "ig+idgi:steps=2" in err and "ig:aggregator=idgi" not in err
