"""Tests for the shipped demo classifier (tfxattr.demo) and its training script."""
import os
import subprocess
import sys

import numpy as np
import pytest

from tfxattr import demo
from tfxattr.synthetic import CLASS_NAMES

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "train_demo_model.py")
NUM_CLASSES = len(CLASS_NAMES)


@pytest.fixture(scope="module")
def model():
    return demo.load_demo_model()


def _logits(model, images):
    return np.asarray(model.predict(images.astype(np.float32), batch_size=100, verbose=0))


def test_class_names_and_demo_data():
    assert demo.DEMO_CLASS_NAMES == CLASS_NAMES
    d = demo.make_demo_data(4)
    assert d["images"].shape == (4, 64, 64, 3)
    np.testing.assert_array_equal(d["images"], demo.make_demo_data(4, seed=1)["images"])


def test_model_structure(model):
    import keras

    assert isinstance(model, keras.Model)
    assert tuple(model.input_shape) == (None, 64, 64, 3)
    names = [layer.name for layer in model.layers]
    for name in ("block1_conv", "block2_conv", "block3_conv", "last_conv", "logits"):
        assert name in names
    assert any(isinstance(layer, keras.layers.Rescaling) for layer in model.layers)
    last = model.get_layer(demo.DEMO_LAST_CONV)
    assert len(last.output.shape) == 4
    assert model.layers[-1].name == "logits"
    assert model.get_layer("logits").activation is keras.activations.linear
    # Every path to the output goes through last_conv: the head reproduces the model.
    head = keras.Model(model.input, [last.output, model.output])
    feats, out = head(np.zeros((1, 64, 64, 3), np.float32))
    pooled = np.asarray(feats).mean(axis=(1, 2))
    w, b = model.get_layer("logits").get_weights()
    np.testing.assert_allclose(pooled @ w + b, np.asarray(out), rtol=1e-4, atol=1e-4)


def test_outputs_logits_and_is_accurate_on_unseen_data(model):
    data = demo.make_demo_data(200, seed=2024)  # training used seeds 12345 / 54321
    logits = _logits(model, data["images"])
    assert logits.shape == (200, NUM_CLASSES) and logits.dtype == np.float32
    assert not np.allclose(logits.sum(axis=1), 1.0, atol=1e-2)  # not probabilities
    assert (logits < 0).any()
    acc = np.mean(logits.argmax(axis=1) == data["labels"])
    assert acc >= 0.9, acc


def test_demo_image_and_mask(model):
    from PIL import Image

    image = np.asarray(Image.open(demo.demo_image_path()))
    mask = np.asarray(Image.open(demo.demo_mask_path()))
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert mask.shape == (64, 64) and set(np.unique(mask)) == {0, 255}
    assert 0.05 < (mask > 0).mean() < 0.35
    logits = _logits(model, image[None])[0]
    prob = np.exp(logits - logits.max())
    assert prob.max() / prob.sum() > 0.9


def test_missing_asset_error_names_the_script(monkeypatch, tmp_path):
    monkeypatch.setattr(demo, "_ASSETS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="train_demo_model.py"):
        demo.load_demo_model()
    with pytest.raises(FileNotFoundError, match="train_demo_model.py"):
        demo.demo_image_path()


def _run_script(*args, timeout):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO)


def test_training_script_tiny_run(tmp_path):
    import keras

    res = _run_script("--out", str(tmp_path), "--epochs", "1", "--train-size", "256", "--val-size", "64",
                      timeout=120)  # a guard against a hang, not a speed check (tests check correctness only)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "held-out accuracy" in res.stdout
    for name in ("demo_model.keras", "demo_image.png", "demo_image_mask.png"):
        assert (tmp_path / name).is_file()
    tiny = keras.models.load_model(tmp_path / "demo_model.keras", compile=False)
    out = np.asarray(tiny(np.zeros((2, 64, 64, 3), np.float32)))
    assert out.shape == (2, NUM_CLASSES) and np.isfinite(out).all()


def test_training_script_rejects_bad_flags(tmp_path):
    res = _run_script("--out", str(tmp_path), "--epochs", "0", timeout=60)
    assert res.returncode != 0 and "--epochs" in res.stderr
