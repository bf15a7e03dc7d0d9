"""Models people bring: dict outputs, unknown input shapes, channels-first, integer inputs, bad files."""
import keras
import numpy as np
import pytest

import tfxattr
from tfxattr.interop import call_model_function


@pytest.fixture(scope="module")
def dict_model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    h = keras.layers.GlobalAveragePooling2D()(inp)
    outputs = {"main": keras.layers.Dense(3, name="cls")(h), "extra": keras.layers.Dense(2, name="aux")(h)}
    return keras.Model(inp, outputs)


@pytest.mark.parametrize("selector, classes", [("main", 3), ("cls", 3), ("extra", 2), ("aux", 2), (0, 2), (1, 3)])
def test_dict_outputs_by_key_layer_name_or_index(dict_model, selector, classes):
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    adapter = tfxattr.as_model(dict_model, output_index=selector)
    assert adapter.num_classes == classes
    key = {"main": "main", "cls": "main", "extra": "extra", "aux": "extra", 0: "extra", 1: "main"}[selector]
    np.testing.assert_allclose(adapter.scores(x), dict_model(x)[key].numpy(), rtol=1e-6)


def test_dict_output_errors_name_the_choices(dict_model):
    with pytest.raises(ValueError, match="main.*output_index"):
        tfxattr.as_model(dict_model)
    with pytest.raises(ValueError, match="did you mean 'main'"):
        tfxattr.as_model(dict_model, output_index="mian")


def test_subclassed_model_takes_input_shape_in_explain():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.pool = keras.layers.GlobalAveragePooling2D()
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.dense(self.pool(x))

    net = Net()
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="input_shape=.*explain"):
        tfxattr.explain(net, x, "gradient")
    exp = tfxattr.explain(net, x, "gradient", input_shape=(8, 8, 3))
    assert exp.attribution.shape == x.shape


def test_channels_first_models_are_refused():
    inp = keras.Input((3, 16, 16))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(inp)))
    with pytest.raises(ValueError, match="channels-last"):
        tfxattr.as_model(model)


def test_integer_input_models_are_refused():
    inp = keras.Input((8, 8, 3), dtype="int32")
    h = keras.layers.Lambda(lambda t: keras.ops.cast(t, "float32"))(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(h)))
    with pytest.raises(ValueError, match="int32 inputs"):
        tfxattr.as_model(model)


def test_corrupt_keras_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="broken.keras.*exists but cannot be read as a Keras model"):
        tfxattr.as_model(str(bad))


def test_bad_seed_is_named(tiny_model, tiny_images):
    with pytest.raises(ValueError, match="seed"):
        tfxattr.explain(tiny_model, tiny_images, "smooth", seed="abc")


def test_pair_target_out_of_range_is_named(tiny_model, tiny_images):
    with pytest.raises(ValueError, match="target 7 is out of range: the model has 5 classes"):
        call_model_function(tiny_model, target=7)
    cmf = call_model_function(tiny_model)
    with pytest.raises(ValueError, match="out of range"):
        cmf(tiny_images, call_model_args={"target": 9})
