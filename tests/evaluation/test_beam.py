"""The Beam runner: the same store as the local runner, resumable after a SIGKILL, nothing counted twice."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tfxattr import evaluation as ev
from tfxattr.evaluation import beam
from tfxattr.evaluation.store import PARTS_DIR, iter_records, load_results, part_files
from tfxattr.evaluation.summary import load_store, summarize

pytest.importorskip("apache_beam")

DATA, MODELS = "shapes:8", ["demo"]
METHODS = ["gradcam", "ig+idgi:steps=4"]
METRICS = ["insertion", "localization", "sic_aic:thresholds=[0.1,0.3,0.6],min_pred_value=0.0"]
#: 8 images in 4 shards of 2: two workers each get shards, and a kill can fall between two of them
SHARD = 2
OPTIONS = {"chunk_size": SHARD, "images_per_batch": 2, "progress": False, "report": False, "log": lambda m: None}


def run(out, **kw):
    return ev.evaluate(DATA, MODELS, METHODS, METRICS, out, **{**OPTIONS, **kw})


def by_key(out):
    return {(r["model"], r["method"], r["image"], r["target"]): r for r in load_results(out)}


def assert_same_store(a, b):
    """Identical keys; every score equal to 1e-6; every curve equal to 1e-6 (as the reader rebuilds it)."""
    a, b = by_key(a), by_key(b)
    assert a.keys() == b.keys()
    for key, r in a.items():
        assert r["scores"].keys() == b[key]["scores"].keys()
        for metric, scores in r["scores"].items():
            for name, value in scores.items():
                other = b[key]["scores"][metric][name]
                assert (value is None) == (other is None), (key, metric, name)
                if value is not None:
                    assert abs(value - other) <= 1e-6, (key, metric, name, value, other)
            for name, y in r["curves"].get(metric, {}).items():
                np.testing.assert_allclose(y, b[key]["curves"][metric][name], atol=1e-6, equal_nan=True)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    summary = run(out)
    assert summary.computed == 16
    return out


def test_two_beam_workers_give_the_local_runners_store(local, tmp_path):
    summary = run(tmp_path, runner="beam", workers=2, report=True)
    assert (summary.computed, summary.already_done) == (16, 0)
    assert_same_store(local, tmp_path)
    parts = part_files(tmp_path)
    assert len(parts) == (8 // SHARD) * len(METHODS)  # one part per shard and method
    view = load_store(tmp_path / ev.STORE_NAME)
    assert {k: view.models["demo"][k] for k in ("images", "correct", "excluded")} == \
        {k: load_store(local / ev.STORE_NAME).models["demo"][k] for k in ("images", "correct", "excluded")}
    rows = {(r.method, r.metric, r.score): r.aggregate for r in summarize(view)}
    for r in summarize(load_store(local / ev.STORE_NAME)):
        assert rows[(r.method, r.metric, r.score)] == pytest.approx(r.aggregate, abs=1e-6, nan_ok=True)
    assert "| demo | gradcam | sic " in open(summary.report).read()
    again = run(tmp_path)  # the local runner resumes a Beam store (and Beam a local one: the kill test)
    assert (again.computed, again.already_done) == (0, 16)


def test_a_beam_pipeline_killed_part_way_restarts_to_the_same_store(local, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "tfxattr.cli", "eval", "--data", DATA, "--models", *MODELS, "--methods", *METHODS,
           "--metrics", *METRICS, "--chunk-size", str(SHARD), "--images-per-batch", "2", "--runner", "beam",
           "--workers", "2", "--out", str(out), "--no-progress"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)  # its workers share its process group
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not part_files(out):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # the pipeline's process, part-way
    proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # and the worker processes it started, if they still run
    except ProcessLookupError:
        pass
    before = {(r["model"], r["method"], r["image"], r["target"]) for r in load_results(out)}
    assert 1 <= len(before) < 16, "the kill should fall part-way"
    with open(out / PARTS_DIR / ".a-killed-writer.jsonl.tmp", "wb") as f:  # a part a killed worker was writing
        f.write(b'{"kind":"result","model":"demo"')
    # the restart runs the pipeline in this process (Beam's in_memory mode: no worker processes to start, each
    # importing TensorFlow); the killed run above and the two-worker test run Beam's multi_processing workers
    resumed = run(out, runner="beam", workers=2, beam_options={"direct_running_mode": "in_memory"})
    assert (resumed.computed, resumed.already_done) == (16 - len(before), len(before))
    assert not [f for f in os.listdir(out / PARTS_DIR) if f.endswith(".tmp")]
    assert_same_store(local, out)
    results = [r for r in iter_records(out) if r["kind"] == "result"]
    assert len(results) >= 16 and len(by_key(out)) == 16  # any duplicate key is read once


def test_beam_options_are_checked_and_passed_on():
    given = {"direct_running_mode": "in_memory", "save_main_session": True}
    options = beam.pipeline_options(3, given).get_all_options()
    assert (options["runner"], options["direct_num_workers"], options["direct_running_mode"]) == \
        ("DirectRunner", 3, "in_memory")
    assert options["save_main_session"] is True
    with pytest.raises(ValueError, match="not Apache Beam pipeline options.*direct_num_workers"):
        beam.pipeline_options(2, {"direct_num_worker": 2})
    with pytest.raises(ValueError, match="runner"):
        ev.EvaluationConfig(runner="beams")
    with pytest.raises(ValueError, match="workers"):
        ev.EvaluationConfig(runner="beam", workers=0)
    with pytest.raises(ValueError, match="runner is not 'beam'"):
        ev.EvaluationConfig(beam_options={"runner": "DataflowRunner"})
    with pytest.raises(ValueError, match="devices splits batches in one process"):
        ev.EvaluationConfig(runner="beam", devices=2)


def test_beam_needs_models_by_name(tmp_path, demo_model):
    with pytest.raises(ValueError, match="models given by name or path"):
        ev.evaluate(DATA, [demo_model], ["gradient"], ["insertion"], tmp_path, runner="beam", **OPTIONS)


def test_cli_beam_options_parse():
    from tfxattr.cli import _beam_options

    assert _beam_options(["runner=FlinkRunner", "flink_master=host:8081", "--save_main_session"]) == \
        {"runner": "FlinkRunner", "flink_master": "host:8081", "save_main_session": True}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        _beam_options(["=x"])
