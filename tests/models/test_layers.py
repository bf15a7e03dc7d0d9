"""Layer splitting: valid split points, sub-models that compose to the model, nested models, errors;
and on the eleven Keras applications: splits, their IIA/GradCAM blocks, IIA2/IIA3 (one build per model)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_apps
import tfxattr
from tfxattr.models.layers import default_blocks, find_layer, split_model, valid_split_layers


def _compose(models, x):
    for m in models:
        x = m(x, training=False)
    return np.asarray(x)


def _residual_model():
    inp = keras.Input((12, 12, 3), name="image")
    h = keras.layers.Conv2D(4, 3, padding="same", name="stem_conv")(inp)
    b = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="branch_conv")(h)
    h = keras.layers.Add(name="res_add")([h, b])
    d = keras.layers.Conv2D(4, 1, name="dense_conv")(h)
    h = keras.layers.Concatenate(name="dense_cat")([h, d])
    h = keras.layers.Activation("relu", name="post_relu")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inp, keras.layers.Dense(3, name="logits")(h), name="resdense")


def _small_app():
    keras.utils.set_random_seed(1)
    return keras.applications.MobileNetV2(weights=None, input_shape=(64, 64, 3), include_top=False)


def _nested_functional(app):
    inp = keras.Input((64, 64, 3))
    h = keras.layers.Rescaling(1 / 127.5, offset=-1, name="to_unit")(inp)
    h = app(h, training=False)  # the transfer-learning pattern
    h = keras.layers.GlobalAveragePooling2D(name="pool")(h)
    return keras.Model(inp, keras.layers.Dense(4, name="top")(h), name="transfer")


def _nested_sequential(app):
    return keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Rescaling(1 / 127.5, offset=-1, name="to_unit"),
                             app, keras.layers.GlobalAveragePooling2D(name="pool"), keras.layers.Dense(4, name="top")],
                            name="seq_transfer")


X64 = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)


# --------------------------------------------------------------------------- functional graphs
def test_valid_split_points_skip_residual_and_dense_branches():
    model = _residual_model()
    valid = valid_split_layers(model)
    assert valid == ["stem_conv", "res_add", "dense_cat", "post_relu", "gap", "logits"]
    assert valid_split_layers(model, ndim=4) == ["stem_conv", "res_add", "dense_cat", "post_relu"]


def test_split_composes_to_the_model_and_shares_weights():
    model = _residual_model()
    x = np.random.default_rng(1).normal(size=(3, 12, 12, 3)).astype(np.float32)
    stem, head = split_model(model, "res_add")
    np.testing.assert_allclose(_compose([stem, head], x), model(x), atol=1e-6)
    parts = split_model(model, ["stem_conv", "dense_cat", "gap"])
    assert len(parts) == 4
    np.testing.assert_allclose(_compose(parts, x), model(x), atol=1e-6)
    assert tuple(stem.outputs[0].shape) == (None, 12, 12, 4)
    assert any(w is model.get_layer("branch_conv").kernel for w in stem.weights)


@pytest.mark.parametrize("bad", ["branch_conv", "dense_conv"])
def test_invalid_split_names_the_layer_and_lists_valid_ones(bad):
    with pytest.raises(ValueError) as info:
        split_model(_residual_model(), bad)
    msg = str(info.value)
    assert repr(bad) in msg and "bypasses" in msg
    assert all(name in msg for name in ["stem_conv", "res_add", "dense_cat", "post_relu"])


def test_split_argument_errors():
    model = _residual_model()
    with pytest.raises(ValueError, match="ordered from input to output"):
        split_model(model, ["post_relu", "stem_conv"])
    with pytest.raises(ValueError, match="same split point twice"):
        split_model(model, ["res_add", "res_add"])
    with pytest.raises(ValueError, match="no layer 'res_ad'.*Did you mean"):
        split_model(model, "res_ad")
    with pytest.raises(ValueError, match="at least one"):
        split_model(model, [])


def test_sequential_model_every_layer_is_a_split_point():
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="c1"),
                              keras.layers.Flatten(name="flat"), keras.layers.Dense(3, name="d")])
    assert valid_split_layers(model) == ["c1", "flat", "d"]
    x = np.ones((2, 8, 8, 1), np.float32)
    np.testing.assert_allclose(_compose(split_model(model, ["c1", "flat"]), x), model(x), atol=1e-6)


def test_subclassed_and_multi_output_models_are_refused():
    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(2)

        def call(self, x):
            return self.d(x)

    with pytest.raises(TypeError, match="subclassed"):
        valid_split_layers(Sub())
    inp = keras.Input((4,))
    two = keras.Model(inp, [keras.layers.Dense(2)(inp), keras.layers.Dense(3)(inp)])
    with pytest.raises(ValueError, match="one output"):
        valid_split_layers(two)


# --------------------------------------------------------------------------- nested models
@pytest.mark.parametrize("wrap", [_nested_functional, _nested_sequential])
def test_app_nested_behind_preprocessing_layers(wrap):
    app = _small_app()
    model = wrap(app)
    valid = valid_split_layers(model)
    assert valid[0] == "to_unit" and valid[-3:] == [app.name, "pool", "top"]
    assert f"{app.name}/out_relu" in valid and f"{app.name}/block_16_project_BN" in valid
    assert f"{app.name}/block_15_expand" not in valid  # inside a residual block
    # a plain inner name is searched recursively; a path addresses it exactly
    assert find_layer(model, "out_relu") is app.get_layer("out_relu")
    assert find_layer(model, f"{app.name}/out_relu") is app.get_layer("out_relu")
    for layers in (["out_relu"], [f"{app.name}/block_6_project_BN", "out_relu"], ["to_unit", app.name]):
        parts = split_model(model, layers)
        np.testing.assert_allclose(_compose(parts, X64), model(X64, training=False), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="block_15_expand.*not a valid split point"):
        split_model(model, "block_15_expand")
    assert default_blocks(model) == (f"{app.name}/out_relu", f"{app.name}/block_12_add")


def test_ambiguous_plain_name_needs_a_path():
    a = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="fc")], name="first")
    b = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="fc")], name="second")
    inp = keras.Input((4,))
    model = keras.Model(inp, b(a(inp)))
    with pytest.raises(ValueError, match="ambiguous.*first/fc.*second/fc"):
        split_model(model, "fc")
    x = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(_compose(split_model(model, "first/fc"), x), model(x), atol=1e-6)


def test_flexible_input_shape_for_grids():
    """DiPart (Rao et al.): the stem runs on a 2x2 grid, the head on one cell's slice of its feature map."""
    model = _nested_functional(_small_app())
    stem, head = split_model(model, "out_relu", input_shape=(None, None, 3))
    grid = np.concatenate([np.concatenate([X64[:1], X64[1:]], 2)] * 2, 1)  # (1, 128, 128, 3)
    features = stem(grid)
    assert tuple(features.shape) == (1, 4, 4, 1280)
    assert tuple(head(features[:, :2, :2]).shape) == (1, 4)
    np.testing.assert_allclose(head(stem(X64)), model(X64), rtol=1e-5, atol=1e-5)


def test_unknown_spatial_size_and_default_blocks():
    inp = keras.Input((None, None, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", name="a")(inp)
    h = keras.layers.MaxPooling2D(2, name="pool")(h)
    h = keras.layers.Conv2D(4, 3, padding="same", name="b")(h)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h)))
    assert default_blocks(model) == ("b", "pool")  # sizes unknown: the previous valid 4-D split point
    x = np.ones((1, 10, 10, 3), np.float32)
    np.testing.assert_allclose(_compose(split_model(model, "pool"), x), model(x), atol=1e-6)
    assert default_blocks(_residual_model()) == ("post_relu", "dense_cat")


def test_graph_is_unchanged_by_splitting():
    model = _residual_model()
    before = valid_split_layers(model)
    split_model(model, "res_add")
    split_model(model, "post_relu", input_shape=(None, None, 3))
    from tfxattr.models.layers import LayerGraph
    assert LayerGraph(model).valid_names() == before


# --------------------------------------------------------------------------- the eleven applications
@pytest.fixture
def app(keras_app):
    """(name, model): each application built once for all the tests that take it (conftest's ``keras_app``:
    weights=None, at a small input size, and at native size when slow)."""
    return keras_app.name, keras_app.model


@pytest.fixture
def eager():
    """Big graphs run eagerly: tracing them costs more than the few passes steps=2 needs (the
    tf.function path is covered on small models and by test_iia's MobileNetV2 case)."""
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


def test_app_blocks_are_valid_split_points_and_splits_compose(app):
    name, model = app
    spec = keras_apps.get(name)
    valid = valid_split_layers(model, ndim=4)
    assert spec.last_block in valid and spec.penultimate_block in valid
    assert valid.index(spec.penultimate_block) < valid.index(spec.last_block)
    assert default_blocks(model) == (spec.last_block, spec.penultimate_block)
    x = spec.preprocess(np.random.default_rng(2).uniform(0, 255, (1,) + model.input_shape[1:]).astype(np.float32))
    full = np.asarray(model(x, training=False))
    layers = [valid[len(valid) // 2], spec.penultimate_block, spec.last_block]
    np.testing.assert_allclose(_compose(split_model(model, layers), x), full, rtol=1e-5, atol=1e-5)


def test_app_split_inside_a_block_is_refused(app):
    name, model = app
    every = [layer.name for layer in model.layers[1:]]
    valid = set(valid_split_layers(model))
    invalid = [n for n in every if n not in valid]
    if name.startswith("vgg"):
        assert not invalid  # a chain: every layer is a split point
        return
    with pytest.raises(ValueError) as info:
        split_model(model, invalid[len(invalid) // 2])
    assert repr(invalid[len(invalid) // 2]) in str(info.value) and "Valid split layers" in str(info.value)


def test_iia2_iia3_on_each_application(app, eager):
    name, model = app
    spec = keras_apps.get(name)
    adapter = tfxattr.as_model(model, preprocess=spec.preprocess)
    x = np.random.default_rng(3).uniform(0, 255, (1,) + model.input_shape[1:]).astype(np.float32)
    for method in ("iia2", "iia3"):
        e = tfxattr.explain(adapter, x, method, targets=7, steps=2)
        assert e.attribution.shape == (1,) + model.input_shape[1:3] + (1,)
        assert np.isfinite(e.attribution).all() and np.abs(e.attribution).max() > 0
    reps, _ = tfxattr.methods.get_method("iia3").plan(adapter)
    assert reps == ["input", spec.penultimate_block, spec.last_block]
