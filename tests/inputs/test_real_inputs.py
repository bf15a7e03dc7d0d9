"""Images as they come from phones, editors and pipelines (issue 20, round 2): EXIF orientation, alpha,
16-bit and mean-subtracted pixels, and the errors for a folder or a mixed list given as images."""
import warnings

import numpy as np
import pytest
from PIL import Image

import tfxattr
from tfxattr.inputs import load_images, read_image_file


def _sideways_jpeg(path):
    """A JPEG stored 32 wide x 16 high whose EXIF says "rotate 90 degrees clockwise to display" (tag 6):
    shown upright it is 16 wide x 32 high, bright on top (the stored image's left half)."""
    stored = np.zeros((16, 32, 3), np.uint8)
    stored[:, :16] = 255  # left half bright -> top half once rotated clockwise
    img = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(path, exif=exif, quality=95)
    return path


def test_jpeg_exif_orientation_is_applied_wherever_files_are_read(tmp_path):
    path = _sideways_jpeg(tmp_path / "phone.jpg")
    arr, _ = load_images(str(path))
    assert arr.shape == (1, 32, 16, 3)  # upright: taller than wide
    assert arr[0, :16].mean() > 200 and arr[0, 16:].mean() < 50  # bright on top
    folder = read_image_file(path)  # the eval image folders read through this
    assert folder.shape == (32, 16, 3) and folder[:16].mean() > 200


def _half_transparent_png(path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255  # red, half transparent
    rgba[..., 3] = 128
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def test_alpha_is_composited_over_white_by_default_or_the_background_asked_for(tmp_path):
    path = _half_transparent_png(tmp_path / "logo.png")
    white, _ = load_images(str(path))
    np.testing.assert_allclose(white[0, 0, 0], [255, 127, 127], atol=1)  # half red over white
    black, _ = load_images(str(path), background="black")
    np.testing.assert_allclose(black[0, 0, 0], [128, 0, 0], atol=1)
    pil, _ = load_images(Image.open(path))
    np.testing.assert_array_equal(pil, white)
    with pytest.raises(ValueError, match="background.*'white'"):
        load_images(str(path), background="pink")


def test_explain_takes_the_background(tmp_path, tiny_model):
    path = _half_transparent_png(tmp_path / "logo.png")
    exp = tfxattr.explain(tiny_model, str(path), "gradient", input_shape=(16, 16, 3), background="black")
    assert exp.images.max() <= 129


def test_uint16_arrays_are_read_as_16_bit_pixels_like_16_bit_files(tiny_model, tiny_images):
    sixteen = (tiny_images.astype(np.uint8).astype(np.uint16) * 257)
    arr, _ = load_images(sixteen)
    np.testing.assert_allclose(arr, tiny_images.astype(np.uint8), atol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        by16 = tfxattr.explain(tiny_model, sixteen, "gradient")
    by8 = tfxattr.explain(tiny_model, tiny_images.astype(np.uint8), "gradient")
    np.testing.assert_array_equal(by16.targets, by8.targets)
    declared = tfxattr.explain(tiny_model, sixteen, "gradient", pixel_range=(0, 65535))  # declared: as given
    assert declared.images.max() > 255
    np.testing.assert_array_equal(declared.targets, by8.targets)


def test_16_bit_values_for_an_8_bit_range_warn_naming_pixel_range(tiny_model, tiny_images):
    adapter = tfxattr.as_model(tiny_model, pixel_range=(0, 255), input_range=(0, 255))
    with pytest.warns(UserWarning, match=r"16-bit.*pixel_range=\(0, 65535\)"):
        adapter.check_pixels(tiny_images * 257.0)


def test_mean_subtracted_images_warn_naming_pixel_range_and_input_range(tiny_model, tiny_images):
    adapter = tfxattr.as_model(tiny_model, pixel_range=(0, 255), input_range=(0, 255))
    centred = tiny_images - tiny_images.mean(axis=(0, 1, 2))
    with pytest.warns(UserWarning, match=r"mean-subtracted.*pixel_range.*input_range"):
        adapter.check_pixels(centred)
    with warnings.catch_warnings():  # ordinary 8-bit images stay quiet
        warnings.simplefilter("error")
        adapter.check_pixels(tiny_images)


def test_a_folder_given_as_an_image_says_it_is_a_folder(tmp_path):
    with pytest.raises(ValueError, match=r"is a directory.*tfxattr eval"):
        load_images(str(tmp_path), (16, 16, 3))


def test_a_list_of_arrays_of_different_sizes_names_the_item_that_differs():
    images = [np.zeros((16, 16, 3)), np.zeros((16, 16, 3)), np.zeros((20, 16, 3))]
    with pytest.raises(ValueError, match=r"images\[2\] has shape \(20, 16, 3\).*images\[0\] \(16, 16, 3\)"):
        load_images(images, (16, 16, 3))


def test_a_list_mixing_paths_and_arrays_names_the_items(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(path)
    with pytest.raises(ValueError, match=r"images\[0\] is a file path.*images\[1\] an array"):
        load_images([str(path), np.zeros((16, 16, 3))], (16, 16, 3))


def test_eval_arrays_in_uint16_are_16_bit_pixels():
    from tfxattr.evaluation.datasets import load_data

    pixels = np.arange(48, dtype=np.uint8).reshape(1, 4, 4, 3)
    data = load_data({"images": pixels.astype(np.uint16) * 257})
    np.testing.assert_array_equal(data.images[0], pixels[0])
