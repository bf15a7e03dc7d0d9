"""Sanity checks (tfxattr.metrics.sanity): cascading model randomization (Adebayo et al.) and sigma-perturbation
(GGIG Sec. 4), as functions of a method by name and as registered metrics of an Explanation (compute, eval)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfxattr import as_model, explain
from tfxattr.evaluation import evaluate, load_store, parse_spec
from tfxattr.evaluation.datasets import load_data
from tfxattr.metrics import METRICS, compute
from tfxattr.metrics import sanity as S
from tfxattr.metrics import similarity as sim

QUIET = {"progress": False, "log": lambda message: None}


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


def _unchanged(model, before):
    after = model.get_weights()
    return len(after) == len(before) and all(np.array_equal(a, b) for a, b in zip(after, before))


@pytest.fixture(scope="module")
def small():
    """Conv -> BN -> conv -> dense, pixels in [0, 255]; tanh keeps every gradient non-zero."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((24, 24, 3))
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="tanh", name="block1_conv")(x)
    x = keras.layers.BatchNormalization(name="block1_bn")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="tanh", name="block2_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="logits")(x))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (3, 24, 24, 3)).astype(np.float32)


# -- similarity helpers --------------------------------------------------------------------------
def test_similarity_helpers():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(2, 12, 12))
    np.testing.assert_allclose(sim.spearman(a, a), 1.0)
    np.testing.assert_allclose(sim.spearman(a, -a), -1.0)
    np.testing.assert_allclose(sim.spearman(a, np.exp(a)), 1.0)  # ranks only
    assert sim.spearman(a, np.zeros_like(a)).tolist() == [0.0, 0.0]
    np.testing.assert_allclose(sim.ssim(a, a), 1.0, atol=1e-6)
    np.testing.assert_allclose(sim.ssim(a, 3 * a + 7), 1.0, atol=1e-5)  # min-max scaled first
    assert np.all(sim.ssim(a, rng.normal(size=a.shape)) < 0.5)


# -- cascading randomization ---------------------------------------------------------------------
def test_randomization_steps_top_down(small):
    assert S.randomization_steps(small) == [["logits"], ["block2_conv"], ["block1_bn"], ["block1_conv"]]
    assert S.randomization_steps(small, "block") == [["logits"], ["block2_conv"], ["block1_bn", "block1_conv"]]
    assert S.randomization_steps(small, [["logits", "block2_conv"]]) == [["logits", "block2_conv"]]
    with pytest.raises(ValueError, match="gap|weights"):
        S.randomization_steps(small, [["no_such_layer"]])
    with pytest.raises(ValueError, match="randomize"):
        S.randomization_steps(small, "blocks")


@pytest.mark.parametrize("method, options", [("gradient", {}), ("ig", {"steps": 8})])
def test_cascading_randomization_changes_the_map(small, images, method, options):
    before = _weights(small)
    res = S.cascading_randomization(small, images, method, method_options=options, seed=0)
    assert _unchanged(small, before)  # the weights are set back
    assert [r["step"] for r in res.rows] == [0, 1, 2, 3, 4]
    assert res.rows[0]["layers"] == "none" and res.rows[1]["layers"] == "logits"
    first, last = res.rows[0], res.rows[-1]
    assert first["spearman"] == 1.0 and first["spearman_abs"] == 1.0
    assert first["ssim"] == pytest.approx(1.0, abs=1e-6) and first["score_drop"] == 0.0
    if method == "gradient":
        assert last["spearman_abs"] < 0.5 and last["ssim"] < 0.5 and abs(last["spearman"]) < 0.5
    else:  # IG's (x - b) factor keeps some image structure in |map| (Adebayo et al., Fig. 2)
        assert all(r["spearman"] < 0.9 and r["spearman_abs"] < 0.9 for r in res.rows[1:])
    assert res.per_image["spearman"].shape == (5, 3)
    assert res.options == {"randomize": "layer", "seed": 0, "method": method, "method_options": options}
    # targets default to the unmodified model's top-1 and stay fixed
    np.testing.assert_array_equal(res.targets, np.argmax(small.predict(images, verbose=0), -1))


def test_the_weights_are_set_back_when_a_check_fails(small, images, monkeypatch):
    before = _weights(small)
    calls = []

    def failing(reference, attribution):  # fails after the first layer was re-initialised
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("stop")
        return sim.similarity(reference, attribution)
    monkeypatch.setattr(S, "similarity", failing)
    with pytest.raises(RuntimeError, match="stop"):
        S.cascading_randomization(small, images, "gradient")
    assert len(calls) == 2 and _unchanged(small, before)


def test_cascading_randomization_is_seeded(small, images):
    a = S.cascading_randomization(small, images, "gradient", randomize="block", seed=5)
    b = S.cascading_randomization(small, images, "gradient", randomize="block", seed=5)
    c = S.cascading_randomization(small, images, "gradient", randomize="block", seed=6)
    assert a.rows == b.rows and a.rows != c.rows
    assert len(a.rows) == 4


# -- sigma perturbation --------------------------------------------------------------------------
def test_sigma_perturbation_demo_model(demo_model):
    from tfxattr.demo import make_demo_data

    data = make_demo_data(4, seed=7)
    before = _weights(demo_model)
    res = S.sigma_perturbation(demo_model, data["images"], "gradient", eps=[0.0, 0.01, 1.0], samples=2, seed=0)
    assert _unchanged(demo_model, before)
    rows = {r["eps"]: r for r in res.rows}
    assert rows[0.0]["spearman"] == 1.0 and rows[0.0]["spearman_abs"] == 1.0
    assert rows[0.0]["ssim"] == pytest.approx(1.0, abs=1e-6) and rows[0.0]["score_drop"] == 0.0
    assert rows[0.0]["probability"] > 0.8  # the trained model is confident
    assert rows[1.0]["probability"] < rows[0.0]["probability"] - 0.3
    assert rows[1.0]["spearman_abs"] < 0.5 and rows[1.0]["spearman_abs"] < rows[0.01]["spearman_abs"]
    assert rows[1.0]["chance"] == pytest.approx(1.0 / demo_model.outputs[0].shape[-1])


def test_sigma_perturbation_samples_and_validation(small, images):
    before = _weights(small)
    a = S.sigma_perturbation(small, images, "gradient", eps=[0, 0.05], samples=2, seed=1)
    b = S.sigma_perturbation(small, images, "gradient", eps=[0, 0.05], samples=2, seed=1)
    r = S.sigma_perturbation(small, images, "gradient", eps=[0, 0.05], samples=2, seed=1, relative=True)
    assert a.rows == b.rows and a.rows != r.rows
    assert a.rows[0]["spearman"] == 1.0 and a.rows[1]["spearman"] < 1.0
    assert a.options["samples"] == 2 and "draws" not in a.options
    assert _unchanged(small, before)
    with pytest.raises(ValueError, match="eps"):
        S.sigma_perturbation(small, images, "gradient", eps=[-1.0])
    with pytest.raises(ValueError, match="samples"):
        S.sigma_perturbation(small, images, "gradient", samples=0)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['stepz'\] for 'sigma_perturbation\(\)'"):
        S.sigma_perturbation(small, images, "gradient", stepz=3)
    with pytest.raises(ValueError, match="unknown option.*'steps'.*for 'gradient'"):  # the method's own options
        S.sigma_perturbation(small, images, "gradient", method_options={"steps": 3})
    with pytest.raises(TypeError, match="keras.Model"):
        S.sigma_perturbation(lambda x: x, images, "gradient")


def test_retired_names_are_refused_with_the_new_name(small, images):
    with pytest.raises(ValueError, match="'sigma_perturbation\\(\\)': option 'draws' was renamed 'samples'"):
        S.sigma_perturbation(small, images, "gradient", draws=2)
    with pytest.raises(ValueError, match="'cascading_randomization\\(\\)': option 'target' was renamed 'targets'"):
        S.cascading_randomization(small, images, "gradient", target=1)
    ex = explain(small, images, "gradient", progress=False)
    with pytest.raises(ValueError, match="metric 'sigma_perturbation': option 'draws' was renamed 'samples'"):
        compute("sigma_perturbation", small, None, ex, draws=2)


def test_smooth_samples_and_the_checks_samples_do_not_mix(small, images):
    """SmoothGrad's ``samples`` go in ``method_options``; the check's ``samples`` count its weight draws."""
    res = S.sigma_perturbation(small, images, "smooth", method_options={"samples": 2}, eps=[0.0, 0.05], samples=1,
                               seed=0)
    assert res.options["samples"] == 1 and res.options["method_options"]["samples"] == 2
    assert res.rows[0]["spearman"] == 1.0  # the same seed: the same noise on the unmodified model


# -- the registered metrics: the Explanation's method, re-run --------------------------------------
def test_registered_metrics_consume_the_explanation(small, images):
    assert METRICS["cascading_randomization"].consumes == METRICS["sigma_perturbation"].consumes == "explanation"
    before = _weights(small)
    ex = explain(small, images, "ig", steps=8, seed=0, progress=False)
    res = compute("cascading_randomization", small, None, ex, randomize="block")
    assert _unchanged(small, before)
    assert res.metric == "cascading_randomization"
    assert set(res.scores) == {"spearman", "spearman_abs", "ssim", "probability"}
    assert not any(res.higher_is_better.values()) and res.scores["spearman_abs"].shape == (3,)
    assert res.options == {"randomize": "block", "seed": 0, "method": "ig", "method_options": {"steps": 8}}
    assert len(res.extras["rows"]) == 4
    np.testing.assert_array_equal(res.targets, ex.targets)
    named = S.cascading_randomization(small, images, "ig", ex.targets, method_options={"steps": 8},
                                      randomize="block", seed=0)
    assert res.extras["rows"] == named.rows  # one computation behind both doors
    np.testing.assert_allclose(res.scores["spearman"], named.per_image["spearman"][-1])
    sig = compute("sigma_perturbation", small, images, ex, targets=ex.targets, eps=(0.0,), samples=1)
    np.testing.assert_allclose(sig.scores["spearman"], 1.0)
    with pytest.raises(ValueError, match="needs the Explanation itself"):
        compute("sigma_perturbation", small, images, ex.map)
    with pytest.raises(ValueError, match="unknown option.*'method'"):  # the method is the Explanation's
        compute("cascading_randomization", small, None, ex, method="gradient")


def test_the_checks_run_on_an_adapter_with_its_own_output_and_preprocessing(small, images):
    """A ModelAdapter is changed through its Keras model: the check explains the adapter's own scalar."""
    adapter = as_model(small, output="probability", batch_size=2)
    before = _weights(small)
    ex = explain(adapter, images, "gradient", output="probability", progress=False)
    res = compute("sigma_perturbation", adapter, None, ex, eps=(0.0, 0.1), samples=1)
    assert _unchanged(small, before)
    np.testing.assert_allclose(res.extras["rows"][0]["spearman"], 1.0)
    np.testing.assert_allclose(res.extras["per_step"]["probability"][0],
                               adapter.probabilities(images)[np.arange(3), ex.targets], rtol=1e-6)
    callable_model = as_model(lambda x: tf.tile(x[:, 0, 0, :1], [1, 4]), input_shape=(24, 24, 3),
                              pixel_range=(0, 255))
    with pytest.raises(TypeError, match="keras.Model"):
        compute("sigma_perturbation", callable_model, None, ex)


def test_the_runner_runs_the_sanity_checks(tmp_path, demo_model):
    given = ["cascading_randomization:randomize=[[logits],[last_conv]]", "sigma_perturbation:eps=(0.0,1.0),samples=1"]
    summary = evaluate("shapes:2", ["demo"], ["gradient"], given, tmp_path, seed=0, **QUIET)
    checks = [parse_spec(g).label for g in given]
    view = load_store(summary.store)
    results = list(view.results)
    assert summary.computed == 2 and len(results) == 2
    for record in results:
        assert set(record["scores"]) == set(checks)
        assert set(record["scores"][checks[1]]) == {"spearman", "spearman_abs", "ssim", "probability"}
    assert view.metrics[checks[0]]["options"]["method"] == "gradient"
    text = open(summary.report).read()
    assert "## cascading_randomization" in text and "## sigma_perturbation" in text
    # the runner's numbers are those of compute() on the Explanation explain() gives
    chunk = next(load_data("shapes:2").chunks(2))
    x = np.asarray(chunk.images[0], np.float32)[None]
    exp = explain(demo_model, x, "gradient", [results[0]["target"]], seed=0, progress=False)
    direct = compute("cascading_randomization", demo_model, None, exp, randomize=[["logits"], ["last_conv"]])
    assert results[0]["image"] == chunk.ids[0]
    np.testing.assert_allclose(results[0]["scores"][checks[0]]["spearman"], direct.scores["spearman"][0], atol=1e-4)


def test_sanity_checks_take_smooth_as_any_method(small, images):
    """SmoothGrad is a registered method: the checks rerun it (with the method it wraps) on every changed model."""
    ex = explain(small, images, "smooth:inner=ig+idgi", inner_options={"steps": 4}, samples=2, seed=0)
    res = S.cascading_randomization_metric(small, images, ex, randomize="block", seed=0)
    assert res.options["method"] == "smooth" and res.options["method_options"]["inner"] == "ig+idgi"
    assert res.scores["spearman"].shape == (3,)
    np.testing.assert_allclose(res.extras["rows"][0]["spearman"], 1.0)  # same seed: the same noise
    shortcut = explain(small, images, "ig+idgi", steps=4, smooth={"samples": 2}, seed=0)
    assert shortcut.method == "smooth" and shortcut.options["samples"] == 2
