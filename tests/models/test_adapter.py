"""Model adapters: every kind of model a user hands us, and the errors for the ones we cannot use."""
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxattr
from tests.helpers import build_tiny_cnn


def _ig(model, x, **kw):
    return tfxattr.explain(model, x, "ig", targets=1, steps=6, **kw).attribution


class Wrapper(keras.Model):
    """A subclassed model: its input shape is unknown until it is given."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def call(self, x):
        return self.inner(x)


def test_sequential_subclassed_and_callable_models_agree(tiny_model, tiny_images):
    ref = _ig(tiny_model, tiny_images)
    sequential = keras.Sequential([keras.Input((16, 16, 3))] + tiny_model.layers[1:])
    subclassed = tfxattr.as_model(Wrapper(tiny_model), input_shape=(16, 16, 3))
    plain_callable = tfxattr.as_model(lambda x: tiny_model(x), input_shape=(16, 16, 3))
    for model in (sequential, subclassed, plain_callable):
        np.testing.assert_allclose(_ig(model, tiny_images), ref, rtol=1e-4, atol=1e-6)


def test_callable_without_input_shape_is_a_clear_error(tiny_model):
    with pytest.raises(ValueError, match="input_shape"):
        tfxattr.as_model(lambda x: tiny_model(x))


def test_keras_application_nested_in_sequential_with_preprocessing():
    base = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), classifier_activation=None)
    model = keras.Sequential([keras.Input((96, 96, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1.0), base])
    x = np.random.default_rng(0).uniform(0, 255, (2, 96, 96, 3)).astype(np.float32)
    exp = tfxattr.explain(model, x, "ig+idgi", steps=4)
    assert exp.attribution.shape == x.shape and np.all(np.isfinite(exp.attribution))


def test_softmax_model_warns_for_logits_and_is_not_softmaxed_twice(tiny_images):
    inp = keras.Input((16, 16, 3))
    out = keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inp))
    model = keras.Model(inp, out)
    with pytest.warns(UserWarning, match="softmax"):
        tfxattr.as_model(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adapter = tfxattr.as_model(model, output="probability")
    np.testing.assert_allclose(adapter.scores(tiny_images), model(tiny_images).numpy(), rtol=1e-5)


def test_probability_output_applies_softmax_to_logits(tiny_model, tiny_images):
    adapter = tfxattr.as_model(tiny_model, output="probability")
    np.testing.assert_allclose(adapter.scores(tiny_images).sum(-1), 1.0, rtol=1e-5)
    v, g = adapter.values_and_gradients(tiny_images, np.array([0, 1, 2], np.int32))
    assert np.all((v.numpy() > 0) & (v.numpy() < 1)) and g.shape == tiny_images.shape


def test_multi_output_model_needs_output_index(tiny_images):
    inp = keras.Input((16, 16, 3))
    h = keras.layers.GlobalAveragePooling2D()(inp)
    model = keras.Model(inp, [keras.layers.Dense(3, name="a")(h), keras.layers.Dense(4, name="b")(h)])
    with pytest.raises(ValueError, match="output_index"):
        tfxattr.as_model(model)
    with pytest.raises(ValueError, match="output_index"):
        tfxattr.as_model(model, output_index=2)
    with pytest.raises(ValueError, match="output_index"):
        tfxattr.as_model(model, output_index="c")
    adapter = tfxattr.as_model(model, output_index=1)
    assert adapter.num_classes == 4
    assert tfxattr.explain(model, tiny_images, "gradient", output_index=1).attribution.shape == tiny_images.shape


def test_model_whose_output_is_not_n_by_classes_is_rejected():
    inp = keras.Input((16, 16, 3))
    model = keras.Model(inp, keras.layers.Conv2D(2, 3)(inp))
    with pytest.raises(ValueError, match=r"\(N, classes\)"):
        tfxattr.as_model(model)


def test_bad_output_and_batch_size_are_rejected(tiny_model):
    with pytest.raises(ValueError, match="output"):
        tfxattr.as_model(tiny_model, output="logits")
    with pytest.raises(ValueError, match="batch_size"):
        tfxattr.as_model(tiny_model, batch_size=0)
    with pytest.raises(ValueError, match="pixel_range"):
        tfxattr.as_model(tiny_model, pixel_range=(255, 0))


def test_unknown_model_name_lists_the_keras_applications():
    with pytest.raises(ValueError, match="resnet50v2"):
        tfxattr.as_model("no_such_model")


def test_keras_file_path_loads(tiny_model, tiny_images, tmp_path):
    path = str(tmp_path / "m.keras")
    tiny_model.save(path)
    np.testing.assert_allclose(_ig(path, tiny_images), _ig(tiny_model, tiny_images), rtol=1e-5, atol=1e-7)


def test_values_and_gradients_are_chunked_consistently(tiny_model, tiny_images):
    adapter = tfxattr.as_model(tiny_model, batch_size=2)
    t = np.array([0, 1, 2], np.int32)
    v, g = adapter.values_and_gradients(tiny_images, t)
    with tf.GradientTape() as tape:
        x = tf.constant(tiny_images)
        tape.watch(x)
        f = tf.gather(tiny_model(x), t, axis=1, batch_dims=1)
    np.testing.assert_allclose(v.numpy(), f.numpy(), rtol=1e-5)
    np.testing.assert_allclose(g.numpy(), tape.gradient(f, x).numpy(), rtol=1e-4, atol=1e-8)


def test_build_tiny_cnn_is_deterministic():
    a, b = build_tiny_cnn(seed=3), build_tiny_cnn(seed=3)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
