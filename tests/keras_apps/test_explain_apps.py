"""Each of the eleven Keras applications (weights=None) runs `explain` with its preprocessing; by name."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_apps
import tfxattr


@pytest.fixture
def eager_if_small(keras_app):
    """The small builds run eagerly: tracing a big graph costs more than the one pass of 4 steps (graph mode
    is covered at native size when slow, and by default on MobileNetV2 below and in test_iia / test_models)."""
    tf.config.run_functions_eagerly(not keras_app.native)
    yield
    tf.config.run_functions_eagerly(False)


def test_ig_on_each_keras_application(keras_app, eager_if_small):
    """IG on each application (conftest's ``keras_app``: small, and at 224 / 299 in graph mode when slow)."""
    name, model, native = keras_app
    spec = keras_apps.get(name)
    h, w = model.input_shape[1:3]
    assert native is False or (h, w) == spec.input_size
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3)).astype(np.uint8)
    exp = tfxattr.explain(model, image, "ig", steps=4, preprocess=spec.preprocess, targets=7)
    assert exp.attribution.shape == (h, w, 3)
    assert exp.map.shape == (h, w)
    assert np.all(np.isfinite(exp.attribution)) and np.any(exp.attribution != 0)


def test_application_name_without_weights_gives_the_offline_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras_apps.registry, "DOWNLOAD_TIMEOUT", 2.0)
    with pytest.raises(keras_apps.WeightsUnavailableError) as info:
        tfxattr.explain("resnet50v2", np.zeros((224, 224, 3), np.uint8), "gradient")
    msg = str(info.value)
    assert "resnet50v2_weights_tf_dim_ordering_tf_kernels.h5" in msg and str(tmp_path) in msg and "--weights" in msg


def test_application_name_with_a_weights_file(tmp_path):
    keras.backend.clear_session()
    path = str(tmp_path / "mnv2.weights.h5")
    keras_apps.build("mobilenet_v2", weights=None).save_weights(path)
    image = np.random.default_rng(1).integers(0, 256, (224, 224, 3)).astype(np.uint8)
    exp = tfxattr.explain("mobilenet_v2", image, "gradient", weights=path)
    assert exp.attribution.shape == (224, 224, 3)
    assert exp.class_names is not None and len(exp.class_names) == 1000
    assert isinstance(exp.label(), str)
