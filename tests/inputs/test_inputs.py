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
        tfxattr.explain(tiny_model, tiny_images, "ig", targets=99)
    with pytest.raises(ValueError, match="baseline shape"):
        tfxattr.explain(tiny_model, tiny_images, "ig", baseline=np.zeros((3, 3, 3)))


# -- issue 9: real inputs ----------------------------------------------------------------------------
GRADIENT_16 = (np.arange(16 * 16).reshape(16, 16) * 256).astype(np.uint16)  # 0 .. 65280, no two equal


@pytest.mark.parametrize("mode, raw, full_scale, ext", [
    ("I;16", GRADIENT_16, 65535, "png"),                                   # 16-bit PNG
    ("I;16", GRADIENT_16, 65535, "tif"),                                   # 16-bit TIFF
    ("I", GRADIENT_16.astype(np.int32) * 32768, 2 ** 31 - 1, "tif"),       # 32-bit signed integer TIFF
    ("F", GRADIENT_16.astype(np.float32) / 65535, 1.0, "tif"),             # float TIFF in [0, 1]
])
def test_high_depth_files_are_scaled_to_the_pixel_range(tmp_path, mode, raw, full_scale, ext):
    path = tmp_path / f"deep.{ext}"
    img = Image.fromarray(raw)  # the dtype gives the mode
    assert img.mode == mode
    img.save(path)
    expected = raw.astype(np.float64) / full_scale * 255
    out, _ = load_images(str(path), (16, 16, 3))
    assert out.shape == (1, 16, 16, 3)
    np.testing.assert_allclose(out[0, ..., 0], expected, atol=1e-3)
    np.testing.assert_array_equal(out[0, ..., 0], out[0, ..., 2])  # grey in every channel
    assert out.min() == 0 and 250 < out.max() <= 255  # not all white
    grey, _ = load_images(Image.open(path), (16, 16, 1))  # an opened PIL image and a 1-channel model
    np.testing.assert_allclose(grey[0, ..., 0], expected, atol=1e-3)
    resized, _ = load_images(str(path), (8, 8, 3))
    assert resized.shape == (1, 8, 8, 3) and 0 < resized.mean() < 255 and resized.std() > 30


def test_float_files_outside_0_1_and_negative_integers_are_refused(tmp_path):
    Image.fromarray(np.full((8, 8), 7.5, np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(ValueError, match=r"f\.tif.*\[0, 1\]"):
        load_images(str(tmp_path / "f.tif"), (8, 8, 3))
    Image.fromarray(np.full((8, 8), -3, np.int32)).save(tmp_path / "neg.tif")
    with pytest.raises(ValueError, match=r"neg\.tif.*negative"):
        load_images(str(tmp_path / "neg.tif"), (8, 8, 3))


def test_truncated_and_non_image_files_are_named(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(good)
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:200])
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"cut\.png: cannot read the image"):
        load_images(str(tmp_path / "cut.png"), (32, 32, 3))
    with pytest.raises(ValueError, match=r"notes\.png: not an image file"):
        load_images([str(good), str(tmp_path / "notes.png")], (32, 32, 3))


def test_bool_and_complex_images_are_refused():
    with pytest.raises(TypeError, match="bool"):
        load_images(np.ones((16, 16, 3), bool), (16, 16, 3))
    with pytest.raises(TypeError, match="complex"):
        load_images(np.ones((16, 16, 3), np.complex64), (16, 16, 3))


def test_targets_by_class_name():
    from tfxattr.demo import DEMO_CLASS_NAMES

    names = list(DEMO_CLASS_NAMES)
    np.testing.assert_array_equal(resolve_targets("triangle", 2, 5, class_names=names), [2, 2])
    np.testing.assert_array_equal(resolve_targets(["ring", 0, "Square"], 3, 5, class_names=names), [4, 0, 1])
    with pytest.raises(ValueError, match=r"unknown class name 'triangel' \(did you mean 'triangle'"):
        resolve_targets("triangel", 1, 5, class_names=names)
    with pytest.raises(ValueError, match="no class names: give a class index"):
        resolve_targets("triangle", 1, 5)
    with pytest.raises(ValueError, match="one per image"):
        resolve_targets(["ring", "disc"], 3, 5, class_names=names)


def test_explain_takes_a_target_by_class_name(demo_data):
    exp = tfxattr.explain("demo", demo_data["images"][:2], "gradient", targets=["triangle", "disc"])
    np.testing.assert_array_equal(exp.targets, [2, 0])
    assert exp.label(0) == "triangle"
