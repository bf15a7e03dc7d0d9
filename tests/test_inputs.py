"""Images, targets and baselines as users pass them, and the errors for bad ones."""
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import tfxattr
from tfxattr.inputs import load_images, resolve_baseline, resolve_targets


def test_uint8_float_tensor_pil_and_path_give_the_same_pixels(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    path = tmp_path / "img.png"
    Image.fromarray(arr).save(path)
    for item in (arr, arr.astype(np.float32), tf.constant(arr), Image.fromarray(arr), str(path), path):
        out, single = load_images(item, (16, 16, 3))
        assert single and out.shape == (1, 16, 16, 3) and out.dtype == np.float32
        np.testing.assert_array_equal(out[0], arr.astype(np.float32))
    out, single = load_images([str(path), str(path)], (16, 16, 3))
    assert not single and out.shape == (2, 16, 16, 3)


def test_files_are_resized_to_the_model_input(tmp_path):
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(path)
    out, _ = load_images(str(path), (16, 16, 3))
    assert out.shape == (1, 16, 16, 3)


@pytest.mark.parametrize("bad,match", [
    (np.zeros((16, 16)), "shape"),
    (np.zeros((1, 1, 16, 16, 3)), "shape"),
    (np.zeros((16, 16, 4)), "channels"),
    (np.zeros((20, 16, 3)), "16x16"),
    (np.full((16, 16, 3), np.nan), "non-finite"),
    (np.zeros((0, 16, 16, 3)), "empty"),
])
def test_bad_images_are_rejected_with_a_clear_message(bad, match):
    with pytest.raises(ValueError, match=match):
        load_images(bad, (16, 16, 3))


def test_missing_file_and_wrong_type():
    with pytest.raises(ValueError, match="no such file"):
        load_images("/nonexistent/x.png", (16, 16, 3))
    with pytest.raises(TypeError, match="images"):
        load_images({"a": 1}, (16, 16, 3))


def test_targets():
    np.testing.assert_array_equal(resolve_targets(2, 3, 5), [2, 2, 2])
    np.testing.assert_array_equal(resolve_targets([0, 4, 1], 3, 5), [0, 4, 1])
    np.testing.assert_array_equal(resolve_targets(None, 2, 5, lambda: np.eye(5)[[3, 1]]), [3, 1])
    with pytest.raises(ValueError, match="out of range"):
        resolve_targets(5, 3, 5)
    with pytest.raises(ValueError, match="out of range"):
        resolve_targets(-1, 3, 5)
    with pytest.raises(ValueError, match="one per image"):
        resolve_targets([1, 2], 3, 5)
    with pytest.raises(TypeError, match="target"):
        resolve_targets(1.5, 3, 5)
    with pytest.raises(TypeError, match="target"):
        resolve_targets(True, 3, 5)


def test_baselines():
    images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    assert np.all(resolve_baseline("black", images, (0, 255)) == 0)
    assert np.all(resolve_baseline("white", images, (0, 255)) == 255)
    assert np.all(resolve_baseline(7.0, images, (0, 255)) == 7)
    blur = resolve_baseline("blur", images, (0, 255))
    assert blur.shape == images.shape and blur.std() < images.std()
    one = np.ones((8, 8, 3), np.float32)
    assert resolve_baseline(one, images, (0, 255)).shape == images.shape
    with pytest.raises(ValueError, match="baseline shape"):
        resolve_baseline(np.ones((4, 4, 3)), images, (0, 255))
    with pytest.raises(ValueError, match="baseline"):
        resolve_baseline("grey", images, (0, 255))


def test_explain_rejects_bad_target_and_baseline(tiny_model, tiny_images):
    with pytest.raises(ValueError, match="out of range"):
        tfxattr.explain(tiny_model, tiny_images, "ig", target=99)
    with pytest.raises(ValueError, match="baseline shape"):
        tfxattr.explain(tiny_model, tiny_images, "ig", baseline=np.zeros((3, 3, 3)))
