"""pixel_range: images in another scale than the model reads are mapped inside the gradient, and a
warning names pixel_range when images cannot be in the declared scale."""
import warnings

import keras
import numpy as np
import pytest

import tfxattr


def test_unit_images_for_an_8_bit_model_warn_and_pixel_range_fixes_them(tiny_model, tiny_images):
    unit = tiny_images / 255.0
    with pytest.warns(UserWarning, match="pixel_range"):
        tfxattr.explain(tiny_model, unit, "gradient")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaled = tfxattr.explain(tiny_model, unit, "ig", pixel_range=(0, 1), steps=8)
    plain = tfxattr.explain(tiny_model, tiny_images, "ig", steps=8)
    np.testing.assert_array_equal(scaled.targets, plain.targets)
    np.testing.assert_allclose(scaled.attribution, plain.attribution, rtol=1e-4, atol=1e-7)  # IG: scale-free
    g_unit = tfxattr.explain(tiny_model, unit, "gradient", pixel_range=(0, 1)).attribution
    g_8bit = tfxattr.explain(tiny_model, tiny_images, "gradient").attribution
    np.testing.assert_allclose(g_unit, 255.0 * g_8bit, rtol=1e-4, atol=1e-6)  # chain rule


def test_8_bit_images_for_a_unit_range_warn(tiny_model, tiny_images):
    with pytest.warns(UserWarning, match="pixel_range"):
        tfxattr.explain(tiny_model, tiny_images, "gradient", pixel_range=(0, 1))


@pytest.mark.parametrize("scale, offset, implied", [(1 / 255.0, 0.0, (0.0, 255.0)), (1 / 127.5, -1.0, (0.0, 255.0)),
                                                    (2.0, -1.0, (0.0, 1.0))])
def test_a_leading_rescaling_implies_the_range(scale, offset, implied):
    inp = keras.Input((8, 8, 3))
    h = keras.layers.Rescaling(scale, offset=offset)(inp)
    model = keras.Model(inp, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h)))
    adapter = tfxattr.as_model(model)
    np.testing.assert_allclose(adapter.input_range, implied, rtol=1e-6)
    assert adapter.pixel_range == adapter.input_range


def test_sources_declare_their_range():
    assert tfxattr.as_model("demo").input_range == (0.0, 255.0)
    assert tfxattr.as_model("mobilenetv2", weights="none").input_range == (0.0, 255.0)


def test_metrics_take_pixel_range(tiny_model, tiny_images):
    from tfxattr.metrics import compute

    maps = np.random.default_rng(0).uniform(size=tiny_images.shape[:3])
    plain = compute("insertion", tiny_model, tiny_images, maps, targets=[0, 1, 2])
    unit = compute("insertion", tiny_model, tiny_images / 255.0, maps, targets=[0, 1, 2], pixel_range=(0, 1))
    np.testing.assert_allclose(unit.scores["insertion"], plain.scores["insertion"], rtol=1e-4)
    with pytest.warns(UserWarning, match="pixel_range"):
        compute("insertion", tiny_model, tiny_images / 255.0, maps, targets=[0, 1, 2])
