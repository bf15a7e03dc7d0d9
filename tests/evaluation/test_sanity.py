"""Sanity checks: cascading model randomization (Adebayo et al.) and sigma-perturbation (GGIG Sec. 4)."""
import keras
import numpy as np
import pytest

from tfxattr import explain
from tfxattr.evaluation import sanity as S


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
    np.testing.assert_allclose(S.spearman(a, a), 1.0)
    np.testing.assert_allclose(S.spearman(a, -a), -1.0)
    np.testing.assert_allclose(S.spearman(a, np.exp(a)), 1.0)  # ranks only
    assert S.spearman(a, np.zeros_like(a)).tolist() == [0.0, 0.0]
    np.testing.assert_allclose(S.ssim(a, a), 1.0, atol=1e-6)
    np.testing.assert_allclose(S.ssim(a, 3 * a + 7), 1.0, atol=1e-5)  # min-max scaled first
    assert np.all(S.ssim(a, rng.normal(size=a.shape)) < 0.5)


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
    res = S.cascading_randomization(small, images, method, seed=0, **options)
    assert _unchanged(small, before)  # the user's model is never modified
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
    # the original explanation is what explain() gives on the user's model
    ref = explain(small, images, method, target=res.targets, **options).attribution
    again = S.cascading_randomization(small, images, method, randomize=[["logits"]], seed=0, **options)
    np.testing.assert_array_equal(again.targets, res.targets)
    assert again.rows[0]["spearman"] == 1.0
    assert np.all(np.isfinite(ref))


def test_cascading_randomization_is_seeded(small, images):
    a = S.cascading_randomization(small, images, "gradient", randomize="block", seed=5)
    b = S.cascading_randomization(small, images, "gradient", randomize="block", seed=5)
    c = S.cascading_randomization(small, images, "gradient", randomize="block", seed=6)
    assert a.rows == b.rows and a.rows != c.rows
    assert len(a.rows) == 4


# -- sigma perturbation --------------------------------------------------------------------------
def test_sigma_perturbation_demo_model():
    from tfxattr.demo import load_demo_model, make_demo_data

    model = load_demo_model()
    data = make_demo_data(4, seed=7)
    before = _weights(model)
    res = S.sigma_perturbation(model, data["images"], "gradient", eps=[0.0, 0.01, 1.0], draws=2, seed=0)
    assert _unchanged(model, before)
    rows = {r["eps"]: r for r in res.rows}
    assert rows[0.0]["spearman"] == 1.0 and rows[0.0]["spearman_abs"] == 1.0
    assert rows[0.0]["ssim"] == pytest.approx(1.0, abs=1e-6) and rows[0.0]["score_drop"] == 0.0
    assert rows[0.0]["probability"] > 0.8  # the trained model is confident
    assert rows[1.0]["probability"] < rows[0.0]["probability"] - 0.3
    assert rows[1.0]["spearman_abs"] < 0.5 and rows[1.0]["spearman_abs"] < rows[0.01]["spearman_abs"]
    assert rows[1.0]["chance"] == pytest.approx(1.0 / model.outputs[0].shape[-1])


def test_sigma_perturbation_draws_and_validation(small, images):
    before = _weights(small)
    a = S.sigma_perturbation(small, images, "gradient", eps=[0, 0.05], draws=2, seed=1)
    b = S.sigma_perturbation(small, images, "gradient", eps=[0, 0.05], draws=2, seed=1)
    r = S.sigma_perturbation(small, images, "gradient", eps=[0, 0.05], draws=2, seed=1, relative=True)
    assert a.rows == b.rows and a.rows != r.rows
    assert a.rows[0]["spearman"] == 1.0 and a.rows[1]["spearman"] < 1.0
    assert _unchanged(small, before)
    with pytest.raises(ValueError, match="eps"):
        S.sigma_perturbation(small, images, "gradient", eps=[-1.0])
    with pytest.raises(ValueError, match="draws"):
        S.sigma_perturbation(small, images, "gradient", draws=0)
    with pytest.raises(ValueError, match="unknown option"):
        S.sigma_perturbation(small, images, "gradient", steps=3)
    with pytest.raises(TypeError, match="keras.Model"):
        S.sigma_perturbation(lambda x: x, images, "gradient")


# -- the metrics-registry view -------------------------------------------------------------------
def test_metric_views_take_an_explanation(small, images):
    ex = explain(small, images, "ig", steps=8)
    res = S.cascading_randomization_metric(small, images, ex, randomize="block")
    assert res.metric == "cascading_randomization"
    assert set(res.scores) == {"spearman", "spearman_abs", "ssim", "probability"}
    assert res.scores["spearman_abs"].shape == (3,) and res.options["method"] == "ig"
    assert res.options["randomize"] == "block" and res.options["steps"] == 8
    assert len(res.extras["rows"]) == 4
    np.testing.assert_array_equal(res.targets, ex.targets)
    sig = S.sigma_perturbation_metric(small, images, method="gradient", eps=(0.0,), draws=1)
    np.testing.assert_allclose(sig.scores["spearman"], 1.0)
    with pytest.raises(ValueError, match="Explanation"):
        S.sigma_perturbation_metric(small, images, ex.map, method="gradient")
    with pytest.raises(ValueError, match="method"):
        S.sigma_perturbation_metric(small, images)


def test_registered_in_metrics(small, images):
    from tfxattr.metrics import METRICS, compute

    assert {"cascading_randomization", "sigma_perturbation"} <= set(METRICS)
    res = compute("sigma_perturbation", small, images, None, targets=[0, 1, 2], method="ig",
                  method_options={"steps": 4}, eps=(0.0, 0.5), draws=1)
    assert res.metric == "sigma_perturbation" and res.targets.tolist() == [0, 1, 2]
    assert [r["eps"] for r in res.extras["rows"]] == [0.0, 0.5] and not res.higher_is_better["spearman"]
    with pytest.raises(ValueError, match="unknown option"):
        compute("cascading_randomization", small, images, None, method="gradient", steps=3)


def test_sanity_checks_take_smooth_as_any_method(small, images):
    """SmoothGrad is a registered method: the checks rerun it (with the method it wraps) on every changed model."""
    ex = explain(small, images, "smooth:method=ig+idgi", method_options={"steps": 4}, samples=2, seed=0)
    res = S.cascading_randomization_metric(small, images, ex, randomize="block", seed=0)
    assert res.options["method"] == "smooth" and res.options["method_options"]["method"] == "ig+idgi"
    assert res.scores["spearman"].shape == (3,)
    np.testing.assert_allclose(res.extras["rows"][0]["spearman"], 1.0)  # same seed: the same noise
    shortcut = explain(small, images, "ig+idgi", steps=4, smooth={"samples": 2}, seed=0)
    assert shortcut.method == "smooth" and shortcut.options["samples"] == 2
