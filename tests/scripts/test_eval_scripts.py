"""The eval/ scripts run end to end on the demo model with generated data (tiny settings). One runs as a user
runs it (``python eval/NAME.py``, a child process); the others call the same ``__main__`` code in this process
(a child would spend ~10 s importing TensorFlow and loading the demo model again)."""
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUICK_SIC = "thresholds=(0.25,0.5,1.0)"


def script(name, *args, timeout=600):
    """``python eval/NAME ARGS`` in a child process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, os.path.join(ROOT, "eval", name), "--no-progress", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def load_script(name, monkeypatch):
    """The module ``eval/NAME``, imported in this process (the scripts import their sibling ``common``)."""
    import importlib.util

    monkeypatch.syspath_prepend(os.path.join(ROOT, "eval"))
    spec = importlib.util.spec_from_file_location(f"eval_{name[:-3]}", os.path.join(ROOT, "eval", name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(monkeypatch, name, *args):
    """``python eval/NAME ARGS`` in this process: the file run as ``__main__`` (``runpy``) with that ``sys.argv``;
    the exit code it gives (its output goes to pytest's captured stdout / stderr)."""
    import runpy

    path = os.path.join(ROOT, "eval", name)
    monkeypatch.syspath_prepend(os.path.dirname(path))  # as Python puts the script's folder first
    monkeypatch.setattr(sys, "argv", [path, "--no-progress", *args])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(path, run_name="__main__")
    return exit_.value.code


def table_rows(text, first_cell):
    """The cells of every Markdown table row whose first cell is ``first_cell``."""
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith(f"| {first_cell} |")]


def is_number(cell):
    return re.fullmatch(r"-?\d+\.\d+", cell) is not None


def test_idgi_tables(tmp_path, monkeypatch):
    code = run_script(monkeypatch, "idgi_tables.py", "--models", "demo", "--data", "shapes:4", "--steps", "4",
                      "--out", str(tmp_path), "--metric-options", f"sic_aic_idgi:{QUICK_SIC}",
                      f"sic_aic_idgi_msssim:{QUICK_SIC}")
    assert code == 0
    text = open(tmp_path / "idgi_tables.md").read()
    assert text.count("## Table") == 9  # insertion x2, SIC/AIC x2 x2, F1 / ROC-AUC / MAE (shapes have masks)
    assert "| model | IG | +IDGI | GIG | +IDGI | BlurIG | +IDGI | Gradient |" in text
    rows = table_rows(text, "demo")
    assert len(rows) == 9 and all(len(r) == 8 for r in rows)
    assert all(is_number(c) for r in rows[:2] + rows[6:] for c in r[1:])  # insertion, localization: every image
    assert (tmp_path / "report.md").exists() and (tmp_path / "plots").is_dir()


def test_iia_table(tmp_path, monkeypatch):
    code = run_script(monkeypatch, "iia_table.py", "--models", "demo", "--data", "shapes:2", "--steps", "4",
                      "--settings", "target", "--out", str(tmp_path), "--metric-options", "insertion:step=0.1",
                      "deletion:step=0.1", f"sic_aic_pair:{QUICK_SIC}")
    assert code == 0
    text = open(tmp_path / "iia_table.md").read()
    assert "| metric | setting | GC | GC++ | LIFT | AC | IG | GIG | BIG | FG | LC | XGC | IIA2 | IIA3 |" in text
    for metric in ("NEG", "POS", "INS", "DEL", "ADP", "PIC"):
        (row,) = table_rows(text, metric)
        assert row[1] == "Target" and len(row) == 14 and all(is_number(c) for c in row[2:]), row
    assert [r[0] for r in table_rows(text, "SIC") + table_rows(text, "AIC")] == ["SIC", "AIC"]
    assert (tmp_path / "target" / "report.md").exists()


@slow("ResNet101V2 x 12 methods: over 10 minutes on a 2-core CPU")
def test_iia_table_on_an_untrained_resnet101v2_with_mock_imagenet(tmp_path):
    """The CNN part end to end on a random-weight ResNet101V2 (224 x 224) with one mock ImageNet image."""
    res = script("iia_table.py", "--models", "resnet101v2", "--weights", "none", "--mock-data", "1", "--steps", "2",
                 "--settings", "predicted", "--out", str(tmp_path), "--metric-options", "insertion:step=0.25",
                 "deletion:step=0.25", "pos_neg:fractions=(0.5,)", f"sic_aic_pair:{QUICK_SIC}", timeout=3600)
    assert res.returncode == 0, res.stderr
    text = open(tmp_path / "iia_table.md").read()
    assert "RANDOM WEIGHTS" in text and "MOCK DATA" in text
    for metric in ("NEG", "POS", "INS", "DEL", "ADP", "PIC"):
        (row,) = table_rows(text, metric)
        assert row[1] == "Predicted" and len(row) == 14 and all(is_number(c) for c in row[2:]), row


VIT_QUICK = ["--settings", "target", "--metric-options", "insertion:step=0.25", "deletion:step=0.25",
             f"sic_aic_pair:{QUICK_SIC}"]


@pytest.mark.parametrize("model", ["demo_vit", pytest.param("vit_b16", marks=slow("ViT-B/16 at 224: ~70 s"))])
def test_iia_table_vit(tmp_path, model, monkeypatch):
    """IIA Table 2 (--vit) on the demo ViT with generated shapes, and on a random-weight ViT-B/16 with
    tfds.testing.mock_data (a pipeline check)."""
    data = ["--data", "shapes:3"] if model == "demo_vit" else ["--mock-data", "1", "--weights", "none"]
    code = run_script(monkeypatch, "iia_table.py", "--vit", "--models", model, *data, "--steps", "1",
                      "--out", str(tmp_path), *VIT_QUICK)
    assert code == 0
    text = open(tmp_path / "iia_table_vit.md").read()
    assert "| metric | setting | GAE | IIA2 | IIA3 |" in text
    for metric in ("NEG", "POS", "INS", "DEL", "ADP", "PIC"):
        (row,) = table_rows(text, metric)
        assert row[1] == "Target" and all(is_number(c) for c in row[2:]), row
    assert ("RANDOM WEIGHTS" in text) == (model == "vit_b16")


def test_ggig_table(tmp_path):
    res = script("ggig_table.py", "--models", "demo", "--data", "shapes:4", "--steps", "4", "--ascent-steps", "5",
                 "--out", str(tmp_path), "--metric-options", f"sic_aic_ggig:{QUICK_SIC}")
    assert res.returncode == 0, res.stderr
    text = open(tmp_path / "ggig_table.md").read()
    assert "| Method | demo SIC | demo AIC |" in text
    for method in ("Gradients", "Integrated Gradients", "GGIG", "Edge Detector", "Random"):
        (row,) = table_rows(text, method)
        assert len(row) == 3
    assert "ggig_paper:ascent_steps=5,steps=4" in text


def test_rao_grids(tmp_path, monkeypatch):
    code = run_script(monkeypatch, "rao_grids.py", "--models", "demo", "--data", "shapes:12", "--steps", "4",
                      "--layers", "input", "final", "--methods", "gradient", "ig", "--aggatt-edges", "0,0.5,1",
                      "--out", str(tmp_path))
    assert code == 0
    text = open(tmp_path / "rao_grids.md").read()
    rows = {tuple(r[:2]): r[2:] for r in (table_rows(text, s) for s in ("gridpg", "difull", "dipart"))
            for r in r}
    assert set(rows) == {(s, layer) for s in ("gridpg", "difull", "dipart") for layer in ("input", "final")}
    # DiFull: no gradient can reach another cell, so input-layer localization is exactly 1
    assert rows[("difull", "input")] == ["1.000 [1.000, 1.000]"] * 2
    figures = sorted(os.listdir(tmp_path / "aggatt"))
    assert len(figures) == 6 and all(f.endswith(".png") for f in figures)
    assert "aggatt/demo_difull_input.png" in open(tmp_path / "report.md").read()


@pytest.mark.parametrize("name", ["idgi_tables.py", "rao_grids.py"])
def test_scripts_report_bad_arguments_in_one_line(tmp_path, name, monkeypatch, capsys):
    """In this process (a child would spend its time importing TensorFlow): the script's ``__main__`` is
    ``raise SystemExit(common.main_guard(main))``, run here as the same call."""
    module = load_script(name, monkeypatch)
    argv = ["--no-progress", "--models", "nope", "--data", "shapes:2", "--out", str(tmp_path)]
    code = module.common.main_guard(lambda: module.main(argv))
    err = capsys.readouterr().err
    assert code == 2 and "unknown model 'nope'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
