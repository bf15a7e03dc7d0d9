"""train_explainer: determinism, checkpoints, validation, and bad input."""
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfxattr.learn import build_explainer, train_explainer


@pytest.fixture(scope="module")
def tiny():
    from tests.helpers import build_tiny_cnn

    images = np.random.default_rng(3).uniform(0, 255, (6, 16, 16, 3)).astype(np.float32)
    return build_tiny_cnn(), images


def test_deterministic_with_a_seed_and_checkpoints(tiny, tmp_path):
    model, images = tiny
    a = train_explainer(model, images, steps=2, seed=1, progress=False, checkpoint_dir=str(tmp_path),
                        checkpoint_every=2)
    b = train_explainer(model, images, steps=2, seed=1, progress=False)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
    assert {"best.keras", "latest.keras", "log.json"} <= set(os.listdir(tmp_path))
    # the frozen encoder is a copy: training left the model itself alone
    assert all(layer.trainable for layer in model.layers)
    untrained = build_explainer(model, seed=1)
    moved = [not np.allclose(u, v) for u, v in zip(a.get_weights(), untrained.get_weights())]
    assert any(moved)


def test_steps_zero(tiny):
    model, images = tiny
    with pytest.raises(ValueError, match="steps"):
        train_explainer(model, images, steps=0)


def test_explainer_output_shape_must_match(tiny):
    model, images = tiny
    inp = keras.Input((16, 16, 3))
    three = keras.Model(inp, keras.layers.Conv2D(3, 1)(inp))  # 3 maps for a 5-class model
    with pytest.raises(ValueError, match="explainer must return"):
        train_explainer(model, images, explainer=three, steps=1, progress=False)
    flat = keras.Model(inp, keras.layers.Dense(5)(keras.layers.Flatten()(inp)))
    with pytest.raises(ValueError, match="explainer must return"):
        train_explainer(model, images, explainer=flat, steps=1, progress=False)
    big = keras.Input((32, 32, 3))
    wrong_size = keras.Model(big, keras.layers.Conv2D(5, 1)(big))
    with pytest.raises(ValueError, match="explainer reads inputs"):
        train_explainer(model, images, explainer=wrong_size, steps=1, progress=False)


def test_model_without_gradients(tiny):
    model, images = tiny
    inp = keras.Input((16, 16, 3))
    frozen = keras.Model(inp, keras.layers.Lambda(tf.stop_gradient)(model(inp)))
    with pytest.raises(ValueError, match="model: .* no gradient"):
        train_explainer(frozen, images, steps=1, progress=False)


def test_bad_targets_and_images(tiny):
    model, images = tiny
    with pytest.raises(ValueError, match="targets"):
        train_explainer(model, images, targets=[9] * 6, steps=1)
    with pytest.raises(ValueError, match="images"):
        train_explainer(model, images[:1], steps=1)
