"""Sigmoid heads: a one-unit model is a binary classifier (two classes), K sigmoid units are K labels."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxattr
from tfxattr.metrics import compute

SIZE = 10


def _model(units, activation, seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Rescaling(1 / 255.0)(inp)
    h = keras.layers.Conv2D(4, 3, activation="tanh")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inp, keras.layers.Dense(units, activation=activation, name="head")(h))


def _logits_of(model, x):
    """The pre-activation of the model's last Dense layer, computed by hand."""
    features = keras.Model(model.inputs, model.get_layer("head").input)(x)
    w, b = model.get_layer("head").get_weights()
    return features.numpy() @ w + b


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(2).uniform(0, 255, (4, SIZE, SIZE, 3)).astype(np.float32)


def test_binary_sigmoid_head_has_two_classes(images):
    model = _model(1, "sigmoid")
    with pytest.warns(UserWarning, match="sigmoid"):
        adapter = tfxattr.as_model(model)
    assert adapter.head == "sigmoid" and adapter.num_classes == 2 and "binary" in adapter.describe()
    z = _logits_of(model, images)[:, 0]
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(adapter.probabilities(images), np.stack([1 - p, p], 1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(adapter.scores(images), np.stack([-z, z], 1), rtol=1e-3, atol=1e-4)
    exp = tfxattr.explain(model, images, "gradient", output="probability")
    np.testing.assert_array_equal(exp.targets, (p > 0.5).astype(int))  # target=None: the predicted class
    assert np.all(np.abs(exp.attribution).sum((1, 2, 3)) > 0)  # never a softmax over one unit (all zero)


def test_binary_targets_explain_z_and_minus_z(images):
    model = _model(1, None)
    adapter = tfxattr.as_model(model)
    assert adapter.head == "sigmoid_logits" and adapter.num_classes == 2
    one = tfxattr.explain(model, images, "gradient", targets=1).attribution
    zero = tfxattr.explain(model, images, "gradient", targets=0).attribution
    np.testing.assert_allclose(zero, -one, rtol=1e-6)
    with tf.GradientTape() as tape:
        x = tf.constant(images)
        tape.watch(x)
        z = model(x)[:, 0]
    np.testing.assert_allclose(one, tape.gradient(z, x).numpy(), rtol=1e-5, atol=1e-8)


def test_multi_label_units_are_explained_one_by_one(images):
    model = _model(3, "sigmoid")
    adapter = tfxattr.as_model(model, output="probability")
    assert adapter.num_classes == 3 and "multi-label" in adapter.describe()
    p = model(images).numpy()
    np.testing.assert_allclose(adapter.probabilities(images), p, rtol=1e-5)  # no softmax across units
    np.testing.assert_allclose(adapter.values(images, [2, 0, 1, 2]).numpy(), p[np.arange(4), [2, 0, 1, 2]],
                               rtol=1e-5)
    linear = _model(3, None)  # a linear head is taken as softmax logits unless told otherwise
    assert tfxattr.as_model(linear).head == "softmax_logits"
    told = tfxattr.as_model(linear, head="sigmoid_logits", output="probability")
    np.testing.assert_allclose(told.probabilities(images), tf.sigmoid(linear(images)).numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="head"):
        tfxattr.as_model(linear, head="sigmoidd")


def test_perturbation_metrics_see_both_classes_of_a_binary_model(images):
    model = _model(1, None, seed=4)
    maps = np.random.default_rng(0).uniform(size=images.shape[:3])
    ins = compute("insertion", model, images, maps, batch_size=8)
    dele = compute("deletion", model, images, maps, batch_size=8)
    both = np.concatenate([ins.scores["insertion"], dele.scores["deletion"]])
    assert np.all(both < 1.0) and np.all(both > 0.0)  # a softmax over one unit gave 1.0 for every map
