"""Metric capabilities declared at registration drive the runner and the report; the run's config."""
import os

import numpy as np
import pytest

from tfxattr.evaluation import STORE_NAME, EvaluationConfig, evaluate, load_store, report
from tfxattr.metrics import METRICS, Curve, MetricResult, register_metric, unregister_metric

QUIET = {"progress": False, "log": lambda message: None}
FRACTIONS = np.array([0.25, 0.5, 1.0])
UNIFORM_MASS = 0.46875  # toy_mass of a constant map (the lowest possible): trapezoid of (0.25, 0.5, 1)


def toy_mass(model, images, maps, targets=None, masks=None, batch_size=32, *, labels=None):
    """Toy: share of |map| mass in the top 25/50/100% of pixels (a curve), and the labels it was given."""
    flat = np.sort(np.abs(np.asarray(maps, np.float64)).reshape(len(maps), -1), 1)[:, ::-1]
    counts = (FRACTIONS * flat.shape[1]).astype(int)
    y = np.cumsum(flat, 1)[:, counts - 1] / flat.sum(1, keepdims=True)
    given = np.full(len(maps), np.nan) if labels is None else np.asarray(labels, np.float64)
    return MetricResult("toy_mass", {"mass": np.trapezoid(y, FRACTIONS, axis=1), "label": given},
                        {"mass": True, "label": True}, curves={"mass": Curve(FRACTIONS, y)})


@pytest.fixture
def register():
    """register_metric for one test: the names it adds are removed again afterwards."""
    added = []

    def add(name, fn, *summary, **capabilities):
        spec = register_metric(name, fn, *summary, **capabilities)
        added.append(name)
        return spec
    yield add
    for name in added:
        unregister_metric(name)


def test_a_metric_that_needs_masks_is_refused_on_data_without_masks(tmp_path, register, demo_data):
    register("toy_masked", toy_mass, needs_masks=True)
    no_masks = {"images": demo_data["images"][:2], "labels": demo_data["labels"][:2]}
    with pytest.raises(ValueError, match="metric 'toy_masked' needs object masks; data 'arrays' has none"):
        evaluate(no_masks, ["demo"], ["gradient"], ["toy_masked"], tmp_path / "a", **QUIET)
    assert not (tmp_path / "a" / STORE_NAME).exists()
    summary = evaluate("shapes:2", ["demo"], ["gradient"], ["toy_masked"], tmp_path / "b", report=False, **QUIET)
    assert summary.computed == 2  # the same metric runs on data with masks


def test_a_toy_maps_metric_runs_through_evaluate_into_the_store_and_report(tmp_path, register, monkeypatch):
    register("toy_mass", toy_mass, uses_labels=True, curve_axes={"mass": "fraction of pixels, toy"})
    xlabels, real = {}, report.line_plot

    def spy(series, path, **kw):
        xlabels[os.path.basename(path)] = kw["xlabel"]
        return real(series, path, **kw)
    monkeypatch.setattr(report, "line_plot", spy)
    summary = evaluate("shapes:4", ["demo"], ["gradient"], ["toy_mass", "insertion"], tmp_path, **QUIET)
    view = load_store(summary.store)
    assert summary.computed == 4 and len(view.results) == 4
    for r in view.results:
        assert r["scores"]["toy_mass"]["label"] == r["label"]  # uses_labels: the data's labels were passed
        assert UNIFORM_MASS <= r["scores"]["toy_mass"]["mass"] <= 0.75 and len(r["curves"]["toy_mass"]["mass"]) == 3
    assert view.metrics["toy_mass"]["curve_axes"] == {"mass": "fraction of pixels, toy"}
    text = open(summary.report).read()
    assert "## toy_mass" in text and "](plots/demo__toy_mass__mass.png)" in text
    assert xlabels == {"demo__toy_mass__mass.png": "fraction of pixels, toy",
                       "demo__insertion__insertion.png": "fraction of pixels inserted",
                       "demo__insertion__insertion_ratio.png": "fraction of pixels inserted"}


def test_metrics_that_do_not_score_plain_maps_are_refused(tmp_path, register):
    register("toy_model", toy_mass, consumes="model")
    for name in ("toy_model", "grid_localization"):  # the sanity checks consume the Explanation: they run
        with pytest.raises(ValueError, match=f"metric '{name}' does not score attribution maps"):
            evaluate("shapes:2", ["demo"], ["gradient"], [name], tmp_path, **QUIET)


def test_report_of_an_older_store_takes_curve_axes_from_the_registry():
    old_record = {"name": "sic_aic_idgi", "curves": {"sic": {"x": [0, 1], "scale": 1.0}}}
    assert report.curve_axis(old_record, "sic") == "information level (normalised)"
    assert report.curve_axis({**old_record, "curve_axes": {"sic": "mine"}}, "sic") == "mine"


def test_register_metric_checks_capabilities(register):
    with pytest.raises(ValueError, match="consumes must be one of"):
        register("toy_bad", toy_mass, consumes="images")
    with pytest.raises(ValueError, match="uses_labels=True needs a keyword-only 'labels' option"):
        register("toy_bad", lambda model, images, maps, targets=None, masks=None, batch_size=32: None,
                 uses_labels=True)
    with pytest.raises(ValueError, match="needs_masks must be True or False"):
        register("toy_bad", toy_mass, needs_masks="yes")
    assert "toy_bad" not in METRICS
    spec = register("toy_ok", toy_mass, "a toy", needs_masks=True, labels=(1,))
    assert (spec.consumes, spec.needs_masks, spec.uses_labels, spec.summary) == ("maps", True, False, "a toy")
    assert spec.defaults == {"labels": (1,)} and METRICS["toy_ok"] is spec


def test_options_override_a_config_and_unknown_ones_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['corect_only'\] for 'evaluate' "
                                         r"\(did you mean 'correct_only'\?\)"):
        evaluate("shapes:2", ["demo"], ["gradient"], ["insertion"], tmp_path, corect_only=True)
    config = EvaluationConfig(images_per_batch=1, report=False, **QUIET)
    summary = evaluate("shapes:3", ["demo"], ["gradient"], ["insertion"], tmp_path, config, limit=2)
    assert summary.computed == 2 and summary.report is None and config.limit is None
    for bad, message in [({"batch_size": 0}, "batch_size must be a positive integer"),
                         ({"aggregation": {"aic": "avg"}}, "aggregation values must be one of"),
                         ({"resize": "pad"}, "resize must be one of"), ({"correct_only": "yes"}, "correct_only"),
                         ({"reduce": "sum_ab"}, "did you mean 'sum_abs'")]:
        with pytest.raises(ValueError, match=message):
            EvaluationConfig(**bad)
    with pytest.raises(TypeError, match="EvaluationConfig"):
        evaluate("shapes:2", ["demo"], ["gradient"], ["insertion"], tmp_path, {"limit": 1})
