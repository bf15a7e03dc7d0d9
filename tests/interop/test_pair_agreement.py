"""Exact agreement with PAIR saliency 0.2.1 on the same model, input and steps."""
import numpy as np
import pytest
import saliency.core as saliency_core

import tfxattr
from tfxattr.interop import call_model_function


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def setup(demo_model, demo_data):
    image = demo_data["images"][0].astype(np.float32)
    target = int(demo_data["labels"][0])
    return demo_model, image, target, call_model_function(demo_model, target=target)


def test_ig_saliency_rule_equals_pair_integrated_gradients(setup):
    model, image, target, cmf = setup
    ref = saliency_core.IntegratedGradients().GetMask(image, cmf, x_baseline=np.zeros_like(image), x_steps=25,
                                                       batch_size=10)
    ours = tfxattr.explain(model, image, "ig", targets=target, steps=25, rule="saliency", batch_size=7).attribution
    assert _rel(ours, ref) < 1e-4


def test_blur_ig_equals_pair_blur_ig(setup):
    model, image, target, cmf = setup
    ref = saliency_core.BlurIG().GetMask(image, cmf, steps=20, max_sigma=50, batch_size=1, sqrt=False)
    ours = tfxattr.explain(model, image, "blur_ig", targets=target, steps=20, blur_sigma=50).attribution
    assert _rel(ours, ref) < 1e-4


def test_guided_ig_equals_pair_guided_ig(setup, monkeypatch):
    import saliency.core.guided_ig as pair_guided_ig

    real_quantile = np.quantile

    def quantile(a, q, interpolation=None, **kw):  # PAIR passes the NumPy-1 keyword; NumPy 2 calls it method
        return real_quantile(a, q, method=interpolation, **kw)

    monkeypatch.setattr(pair_guided_ig.np, "quantile", quantile)
    model, image, target, cmf = setup
    ref = saliency_core.GuidedIG().GetMask(image, cmf, x_baseline=np.zeros_like(image), x_steps=30)
    ours = tfxattr.explain(model, image, "guided_ig", targets=target, steps=30).attribution
    assert _rel(ours, ref) < 1e-4


# --------------------------------------------------------------------------- issue 8 items 1, 3, 6
def _values_and_gradients(cmf, points):
    from saliency.core.base import INPUT_OUTPUT_GRADIENTS, OUTPUT_LAYER_VALUES

    out = cmf(np.asarray(points), call_model_args=None, expected_keys=[INPUT_OUTPUT_GRADIENTS, OUTPUT_LAYER_VALUES])
    return np.asarray(out[OUTPUT_LAYER_VALUES], np.float64).reshape(-1), np.asarray(out[INPUT_OUTPUT_GRADIENTS],
                                                                                     np.float64)


def _idgi_reference(cmf, path, gradient_at_end=False):
    """A port of IDGI Algorithm 1 (the authors' ``idgi.py``): for each step j of a path ordered from the
    baseline to the input, ``d = f(x_{j+1}) - f(x_j)``, ``g = grad f(x_j)`` (``x_{j+1}`` with
    ``gradient_at_end``), ``I += g*g*d / sum(g*g)``."""
    f, g = _values_and_gradients(cmf, path)
    attr = np.zeros(path.shape[1:])
    for j in range(len(path) - 1):
        gj = g[j + 1] if gradient_at_end else g[j]
        attr += gj * gj * (f[j + 1] - f[j]) / np.sum(gj * gj)
    return attr


def test_ig_idgi_on_pairs_grid_equals_the_reference(setup):
    """Item 1: IG+IDGI on PAIR's ``linspace(0, 1, steps)`` path, the grid the IDGI paper ran on."""
    model, image, target, cmf = setup
    steps = 25
    path = np.asarray([alpha * image for alpha in np.linspace(0, 1, steps)])  # PAIR's points, black baseline
    ref = _idgi_reference(cmf, path)
    ours = tfxattr.explain(model, image, "ig+idgi", targets=target, steps=steps, rule="saliency").attribution
    assert _rel(ours, ref) < 1e-5


@pytest.mark.parametrize("gradient_at", ["input_side", "blurred_side"])
def test_blur_ig_idgi_equals_the_reference_on_pairs_blur_path(setup, gradient_at):
    """Item 3: Algorithm 1 on PAIR's blur path (``saliency.core.blur_ig.gaussian_blur`` at
    ``sigma_i = i max_sigma / steps``) with the blurred image as the baseline: "blurred_side" is the literal
    reading (gradient at each segment's start), "input_side" takes it at each segment's end."""
    from saliency.core.blur_ig import gaussian_blur as pair_blur

    model, image, target, cmf = setup
    steps, max_sigma = 20, 10.0
    sigmas = [i * max_sigma / steps for i in range(steps, -1, -1)]  # blurred image first, input last
    path = np.asarray([pair_blur(image, s) for s in sigmas])
    ref = _idgi_reference(cmf, path, gradient_at_end=gradient_at == "input_side")
    ours = tfxattr.explain(model, image, "blur_ig+idgi", targets=target, steps=steps, blur_sigma=max_sigma,
                           gradient_at=gradient_at).attribution
    assert _rel(ours, ref) < 1e-4
    other = _idgi_reference(cmf, path, gradient_at_end=gradient_at != "input_side")
    assert _rel(ours, other) > 1e-2  # the two readings differ: the test tells them apart


def _threshold_model(thresholds, classes, seed):
    """``logits = W relu(x - c)``: a ReLU per pixel whose boundary ``c`` sits exactly on a path point."""
    import keras

    size = thresholds.size
    inp = keras.Input(thresholds.shape)
    gate = keras.layers.Dense(size, activation="relu")
    head = keras.layers.Dense(classes)
    model = keras.Model(inp, head(gate(keras.layers.Flatten()(inp))))
    gate.set_weights([np.eye(size, dtype=np.float32), -thresholds.reshape(-1)])  # x - c, exact near c
    rng = np.random.default_rng(seed)
    head.set_weights([rng.normal(size=(size, classes)).astype(np.float32), np.zeros(classes, np.float32)])
    return model


def test_ig_saliency_rule_equals_pair_where_float32_points_differ():
    """Item 6: with ``rule="saliency"`` the points are PAIR's (float64, cast once), so IG agrees with
    ``saliency.core.IntegratedGradients`` below 1e-6 even where the float32 construction ``a * x`` in
    float32 lands on the other side of a ReLU boundary (shown here: it is off by far more)."""
    import tensorflow as tf

    steps, target = 25, 1
    image = np.random.default_rng(7).uniform(1, 255, (6, 6, 3)).astype(np.float32)
    alphas = np.linspace(0, 1, steps)
    pair_points = np.stack([(alpha * image).astype(np.float32) for alpha in alphas])  # PAIR, black baseline
    float32_points = alphas.astype(np.float32)[:, None, None, None] * image
    differ = pair_points != float32_points
    first = np.argmax(differ, axis=0)  # per pixel, the first path point where the two constructions differ
    rows = np.take_along_axis(np.minimum(pair_points, float32_points), first[None], 0)[0]
    thresholds = np.where(differ.any(0), rows, -1.0).astype(np.float32)  # -1: no boundary (always on)
    assert differ.any(0).mean() > 0.5  # most pixels have a boundary on the path
    model = _threshold_model(thresholds, classes=3, seed=0)
    cmf = call_model_function(model, target=target)
    ref = saliency_core.IntegratedGradients().GetMask(image, cmf, x_baseline=np.zeros_like(image), x_steps=steps,
                                                       batch_size=10)
    ours = tfxattr.explain(model, image, "ig", targets=target, steps=steps, rule="saliency", batch_size=7).attribution
    assert _rel(ours, ref) < 1e-6
    adapter = tfxattr.as_model(model)
    _, grads = adapter.values_and_gradients(tf.constant(float32_points), np.full(steps, target, np.int32))
    float32_ig = np.asarray(grads).sum(0) * image / steps
    assert _rel(float32_ig, ref) > 1e-3  # the float32 construction is far off on this model
