"""Real inputs, round 2 (issue 20), the model side: heads read from the selected output, FullGrad's implicit
biases, and clear refusals for inputs that used to fail deep inside Keras or TensorFlow."""
import warnings

import keras
import numpy as np
import pytest

import tfxattr

SIZE = 8
X = np.random.default_rng(0).uniform(0, 1, (2, SIZE, SIZE, 3)).astype(np.float32)


def _dict_model(probs_key, logits_key):
    """Two outputs from one trunk: a softmax Dense and a linear Dense, under the given dict keys (Keras orders
    its layers by the sorted keys, so which one is ``model.layers[-1]`` follows the key names)."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Flatten()(inp)
    probs = keras.layers.Dense(4, activation="softmax", name="probs")(h)
    logits = keras.layers.Dense(3, name="logits")(h)
    return keras.Model(inp, {probs_key: probs, logits_key: logits})


@pytest.mark.parametrize("probs_key,logits_key", [("a_probs", "b_logits"), ("b_probs", "a_logits")])
def test_the_head_is_read_from_the_selected_output(probs_key, logits_key):
    # before: the head came from model.layers[-1]; with the logits layer last, the softmax output picked by key
    # was softmaxed again (max probability 0.287 vs the model's 0.394), with no warning
    model = _dict_model(probs_key, logits_key)
    with pytest.warns(UserWarning, match="already ends in a softmax"):
        probs = tfxattr.as_model(model, output_index=probs_key, pixel_range=(0, 1))
    assert probs.head == "softmax"
    np.testing.assert_allclose(probs.probabilities(X), model(X)[probs_key].numpy(), rtol=1e-5, atol=1e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logits = tfxattr.as_model(model, output_index=logits_key, pixel_range=(0, 1))
    assert logits.head == "softmax_logits"
    np.testing.assert_allclose(logits.scores(X), model(X)[logits_key].numpy(), rtol=1e-5, atol=1e-6)


def test_a_model_ending_in_keras_ops_softmax_is_read_as_probabilities():
    # before: keras.ops.softmax is an operation, not a layer, so model.layers[-1] was the linear Dense and the
    # model was read as logits (probabilities 0.326 vs the model's 0.534, no warning); the probe never ran
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(inp, keras.ops.softmax(keras.layers.Dense(4)(keras.layers.Flatten()(inp))))
    with pytest.warns(UserWarning, match="already ends in a softmax"):
        adapter = tfxattr.as_model(model, pixel_range=(0, 1))
    assert adapter.head == "softmax"
    np.testing.assert_allclose(adapter.probabilities(X), model(X).numpy(), rtol=1e-5, atol=1e-7)
    # an op the head reader does not know (softmax written out) is probed: rows sum to one, none negative
    z = keras.layers.Dense(4)(keras.layers.Flatten()(inp))
    written_out = keras.Model(inp, keras.ops.exp(z) / keras.ops.sum(keras.ops.exp(z), axis=-1, keepdims=True))
    with pytest.warns(UserWarning, match="already ends in a softmax"):
        assert tfxattr.as_model(written_out, pixel_range=(0, 1)).head == "softmax"


def _cnn():
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Conv2D(4, 3, name="conv_a")(inp)
    h = keras.layers.Conv2D(4, 3, name="conv_b")(h)
    return keras.Model(inp, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h)))


def test_a_callable_returning_numpy_is_refused_in_one_line():
    # before: a NotImplementedError from inside an autograph trace (13 frames, "in user code")
    model = _cnn()
    with pytest.raises(TypeError, match=r"returned a numpy.ndarray: the callable must return TensorFlow tensors"):
        tfxattr.explain(lambda v: np.asarray(model(v)), X, "gradient", input_shape=(SIZE, SIZE, 3))


@pytest.mark.parametrize("name,content,why", [
    ("broken.keras", b"not a zip archive", "not a zip archive"),
    ("empty.keras", b"", "empty"),
    ("broken.h5", b"not hdf5", "not an HDF5 file"),
])
def test_a_model_file_that_exists_but_is_no_keras_model(tmp_path, name, content, why):
    # before: "could not load the model file ...: ValueError: File not found: filepath=..." for a file that exists
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"exists but cannot be read as a Keras model: .*{why}"):
        tfxattr.as_model(str(path))


@pytest.mark.parametrize("method,options", [("fullgrad", {}), ("gradcam", {}), ("iia", {}),
                                            ("smooth:inner=fullgrad", {})])
def test_cnn_methods_refuse_a_vit_by_declared_architecture(method, options, monkeypatch):
    # before: fullgrad failed with a TypeError inside a Keras trace; gradcam and iia with "no valid split layer"
    from tests.helpers import build_tiny_vit
    from tfxattr.models import layers

    def no_trace(*args, **kwargs):
        raise AssertionError("the model was flattened before the refusal")
    monkeypatch.setattr(layers, "layer_graph", no_trace)
    images = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"needs convolutional networks \(architecture='cnn'.*is a Vision Transformer"
                                         r".*iia_vit"):
        tfxattr.explain(build_tiny_vit(), images, method, **options)


def test_input_only_iia_and_path_methods_still_run_on_a_vit():
    from tests.helpers import build_tiny_vit

    images = np.random.default_rng(0).uniform(0, 255, (1, 16, 16, 3)).astype(np.float32)
    vit = build_tiny_vit()
    for method, options in (("iia", {"layers": ("input",), "steps": 2}), ("smooth:inner=gradient", {"samples": 2})):
        assert np.all(np.isfinite(tfxattr.explain(vit, images, method, **options).attribution))


def test_an_unknown_cam_layer_lists_the_valid_layers():
    # before: "no layer 'conv_bb' ... Did you mean ['conv_b', 'conv_a']?" without the option name or the valid layers
    with pytest.raises(ValueError, match=r"gradcam: layer='conv_bb': no layer .*Did you mean \['conv_b'.*"
                                         r"Valid 4-D split layers: \['conv_a', 'conv_b'\]"):
        tfxattr.explain(_cnn(), X, "gradcam", layer="conv_bb")
    with pytest.raises(ValueError, match=r"layer='nope'.*Valid 4-D split layers: \['conv_a', 'conv_b'\]"):
        tfxattr.explain(_cnn(), X, "gradcam", layer="nope")


def test_a_path_that_does_not_end_at_the_images_is_refused():
    # before: accepted silently
    model, images = _cnn(), X * 255
    alphas = np.linspace(0, 1, 5)[None, :, None, None, None]
    with pytest.raises(ValueError, match=r"path must end at the input images.*differs from the images by up to 25"):
        tfxattr.explain(model, images, "path", path=alphas * images[:, None] * 0.9)
    rounded = (alphas * images[:, None]).astype(np.float32)  # float32 rounding on the way is accepted
    rounded[:, -1] += 1e-3
    assert np.all(np.isfinite(tfxattr.explain(model, images, "path", path=rounded).attribution))


@pytest.mark.parametrize("method,options", [("gradient", {}), ("gradcam", {}), ("fullgrad", {}),
                                            ("iia", {"steps": 2})])
def test_several_models_in_a_row_raise_no_retracing_warning(method, options, caplog):
    # before: "5 out of the last 5 calls to <bound method ModelAdapter._values_and_gradients ...> triggered
    # tf.function retracing" (and GradCAM._build.<locals>.cam, FullGrad.build.<locals>.saliency) from the 5th model
    import logging

    def cnn(seed):
        keras.utils.set_random_seed(seed)
        inp = keras.Input((SIZE, SIZE, 3))
        h = keras.layers.Conv2D(4, 3, activation="relu")(inp)
        h = keras.layers.Conv2D(4, 3, activation="relu")(h)
        return keras.Model(inp, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h)))
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        for seed in range(6):
            tfxattr.explain(cnn(seed), X * 255, method, progress=False, **options)
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
