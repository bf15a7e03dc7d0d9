"""Completeness: attributions sum to f(x) - f(baseline) (IG approximately, IDGI exactly)."""
import numpy as np
import pytest

import tfxattr


def _delta(model, images, baselines, targets):
    adapter = tfxattr.as_model(model)
    return adapter.values(images, targets).numpy() - adapter.values(baselines, targets).numpy()


def test_ig_200_steps_is_complete_within_one_percent(demo_model, demo_data):
    images = demo_data["images"][:3].astype(np.float32)
    exp = tfxattr.explain(demo_model, images, "ig", steps=200)
    want = _delta(demo_model, images, np.zeros_like(images), exp.targets)
    got = exp.attribution.reshape(len(images), -1).sum(1)
    np.testing.assert_allclose(got, want, rtol=1e-2)


@pytest.mark.parametrize("method", ["ig+idgi", "guided_ig+idgi"])
def test_idgi_is_exactly_complete_on_baseline_paths(demo_model, demo_data, method):
    images = demo_data["images"][:2].astype(np.float32)
    exp = tfxattr.explain(demo_model, images, method, steps=40)
    want = _delta(demo_model, images, np.zeros_like(images), exp.targets)
    got = exp.attribution.reshape(len(images), -1).sum(1)
    np.testing.assert_allclose(got, want, rtol=1e-4)


@pytest.mark.parametrize("gradient_at", [None, "input_side", "blurred_side"])
def test_idgi_is_exactly_complete_on_the_blur_path(demo_model, demo_data, gradient_at):
    from tfxattr.blur import gaussian_blur

    images = demo_data["images"][:2].astype(np.float32)
    exp = tfxattr.explain(demo_model, images, "blur_ig+idgi", steps=40, blur_sigma=20.0, gradient_at=gradient_at)
    blurred = gaussian_blur(images, 20.0).numpy()
    want = _delta(demo_model, images, blurred, exp.targets)
    got = exp.attribution.reshape(len(images), -1).sum(1)
    np.testing.assert_allclose(got, want, rtol=1e-4)


@pytest.mark.parametrize("steps", [2, 25])
def test_idgi_on_pairs_grid_is_exactly_complete(demo_model, demo_data, steps):
    """Issue 8 item 1: ``rule="saliency"`` (PAIR's ``linspace(0, 1, steps)``, the IDGI paper's grid) failed
    with "segments never received their end values"; now its ``steps - 1`` segments sum to f(x) - f(b)."""
    images = demo_data["images"][:2].astype(np.float32)
    exp = tfxattr.explain(demo_model, images, "ig+idgi", steps=steps, rule="saliency")
    want = _delta(demo_model, images, np.zeros_like(images), exp.targets)
    got = exp.attribution.reshape(len(images), -1).sum(1)
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_idgi_skips_zero_gradient_steps_instead_of_nan():
    import keras

    inp = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(2, 3, activation="relu", use_bias=False)(inp)
    out = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inp, out)  # at a black image every ReLU is exactly 0: zero gradient
    x = np.random.default_rng(1).uniform(0, 255, (1, 8, 8, 3)).astype(np.float32)
    exp = tfxattr.explain(model, x, "ig+idgi", steps=8)
    assert np.all(np.isfinite(exp.attribution))


def test_idgi_on_untrained_mobilenet_v2_is_finite():
    import keras

    model = keras.applications.MobileNetV2(weights=None, classifier_activation=None)
    x = np.random.default_rng(2).uniform(0, 255, (224, 224, 3)).astype(np.float32)
    exp = tfxattr.explain(model, x, "ig+idgi", baseline="black", steps=8,
                          preprocess=keras.applications.mobilenet_v2.preprocess_input)
    assert exp.attribution.shape == (224, 224, 3)
    assert np.all(np.isfinite(exp.attribution))
