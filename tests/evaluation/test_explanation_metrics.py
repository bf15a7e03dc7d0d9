"""Metrics that consume the Explanation (sensitivity, completeness) and the new maps metrics (ROAD, MuFidelity)
run in ``evaluate`` (``tfxattr eval``): the runner hands them the Explanation of each batch."""
import numpy as np

from tfxattr import explain
from tfxattr.evaluation import evaluate, load_store
from tfxattr.evaluation.datasets import load_data
from tfxattr.metrics import compute

QUIET = {"progress": False, "log": lambda message: None}
METRICS = ["road:fractions=(0.25,0.5)", "mufidelity:samples=16", "max_sensitivity:samples=2",
           "avg_sensitivity:samples=2", "completeness"]


def test_new_metrics_run_through_evaluate_into_the_store_and_report(tmp_path, demo_model):
    summary = evaluate("shapes:2", ["demo"], ["ig+idgi:steps=4"], METRICS, tmp_path, seed=0, **QUIET)
    results = list(load_store(summary.store).results)
    assert summary.computed == 2 and len(results) == 2
    for record in results:
        scores = record["scores"]
        assert set(scores) == {"road:fractions=(0.25,0.5)", "mufidelity:samples=16", "max_sensitivity:samples=2",
                               "avg_sensitivity:samples=2", "completeness"}
        assert scores["completeness"]["rel_error"] < 1e-3  # IDGI is complete: the runner gave the method's baseline
        assert len(record["curves"]["road:fractions=(0.25,0.5)"]["morf"]) == 3
    text = open(summary.report).read()
    for name in ("road", "mufidelity", "max_sensitivity", "avg_sensitivity", "completeness"):
        assert f"## {name}" in text
    # the runner's Explanation is the one explain() gives: same scores as calling the metric directly
    first = results[0]
    chunk = next(load_data("shapes:2").chunks(2))
    x = np.asarray(chunk.images[0], np.float32)[None]
    exp = explain(demo_model, x, "ig+idgi", steps=4, targets=[first["target"]], seed=0, progress=False)
    direct = compute("max_sensitivity", demo_model, None, exp, samples=2)
    assert first["image"] == chunk.ids[0]
    np.testing.assert_allclose(first["scores"]["max_sensitivity:samples=2"]["max_sensitivity"],
                               direct.scores["max_sensitivity"][0], rtol=1e-3)
