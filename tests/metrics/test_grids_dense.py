"""GridPG for dense-head classifiers (issue 8 item 7): Rao et al.'s classifier kernel.

The reference (Attribution-Evaluation, ``models/models.py``, ``VGG11Model._create_classifier_kernel`` and
``get_logits``) slides VGG11's dense classifier over the grid's feature map with stride 1 and averages the
spatial logits. The direct construction here crops every window of the feature map by hand, applies the
model's own head layers to each crop and averages: it shares no code with ``tfxattr.metrics.grids``.
"""
import keras
import numpy as np
import pytest

from tests.helpers import app_sizes, build_app
from tfxattr.metrics import grids as G

CELL = 32  # the tiny model's input side: four stride-2 pools leave a 2x2 final map
FMAP = 2  # the final map's side for one cell (the classifier kernel's size)
K = 5
TOL = 1e-5  # float32 sums in a different order (convolution vs flatten + matmul), relative to the logit scale
CONVS = ("rescale", "block1_conv", "block1_pool", "block2_conv", "block2_pool", "block3_conv", "block3_pool",
         "block4_conv", "block4_pool")
HEAD = ("flatten", "fc1", "drop1", "fc2", "drop2", "predictions")


def _vgg_like(seed=0, softmax=False, head_norm=False):
    """A VGG-shaped CNN: convolutions and max pools to a 2x2x16 map, then Flatten + Dense + Dense + Dense."""
    keras.utils.set_random_seed(seed)
    bias = keras.initializers.RandomNormal(stddev=0.5)  # non-zero biases, so the kernel's bias is checked
    inputs = keras.Input((CELL, CELL, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for i, filters in enumerate((8, 8, 16, 16), start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", bias_initializer=bias,
                                name=f"block{i}_conv")(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(32, activation="relu", bias_initializer=bias, name="fc1")(x)
    x = keras.layers.Dropout(0.5, name="drop1")(x)
    if head_norm:
        x = keras.layers.BatchNormalization(name="fc1_bn")(x)
    x = keras.layers.Dense(24, activation="relu", bias_initializer=bias, name="fc2")(x)
    x = keras.layers.Dropout(0.5, name="drop2")(x)
    out = keras.layers.Dense(K, activation="softmax" if softmax else None, bias_initializer=bias,
                             name="predictions")(x)
    return keras.Model(inputs, out, name="vgg_like")


@pytest.fixture(scope="module")
def vgg_like():
    return _vgg_like()


def _grid(n, count=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, n * CELL, n * CELL, 3)).astype(np.float32)


def _apply(model, names, x):
    for name in names:
        x = model.get_layer(name)(x, training=False) if "drop" in name else model.get_layer(name)(x)
    return np.asarray(x)


def _direct(model, grid, trunk=CONVS, head=HEAD, window=FMAP):
    """Every ``window`` x ``window`` crop of the grid's final map (stride 1) through the head, averaged;
    also the list of per-window logits, row-major."""
    fmap = _apply(model, trunk, grid)
    side = fmap.shape[1] - window + 1
    logits = [_apply(model, head, fmap[:, i:i + window, j:j + window, :])
              for i in range(side) for j in range(side)]
    return np.mean(logits, axis=0), logits


def _close(got, want):
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL * max(1.0, float(np.abs(want).max())))


def test_one_cell_grid_equals_the_model(vgg_like):
    setting = G.build_setting(vgg_like, "gridpg", n=1)
    assert setting.model.name == "gridpg_classifier_kernel"
    assert any(isinstance(layer, G.ClassifierKernel) for layer in setting.model.layers)
    x = _grid(1, count=3)
    _close(np.asarray(setting.model(x)), np.asarray(vgg_like(x)))


@pytest.mark.parametrize("n", [2, 3])
def test_grid_equals_every_window_through_the_head_averaged(vgg_like, n):
    setting = G.build_setting(vgg_like, "gridpg", n=n)
    grid = _grid(n)
    want, windows = _direct(vgg_like, grid)
    assert len(windows) == ((n - 1) * FMAP + 1) ** 2  # supplement Sec. F: ((n-1)d+1)^2 windows
    got = np.asarray(setting.model(grid))
    assert got.shape == (2, K)
    _close(got, want)
    # the check can fail: the cell-aligned windows alone (a stride equal to the kernel) give other logits
    side = (n - 1) * FMAP + 1
    aligned = np.mean([windows[i * side + j] for i in range(0, side, FMAP) for j in range(0, side, FMAP)], 0)
    assert np.abs(aligned - want).max() > 1e3 * TOL * np.abs(want).max()


def test_layer_split_reproduces_the_grid_model_and_maps_run(vgg_like):
    setting = G.build_setting(vgg_like, "gridpg")
    layers = G.rao_layers(vgg_like)
    assert layers["final"] == "block4_pool"
    grid = _grid(2)
    for layer in (layers["middle"], layers["final"]):
        features, head = setting.split(layer)
        _close(np.asarray(head(features(grid))), np.asarray(setting.model(grid)))
        maps = G.layer_maps(setting, grid, np.array([1, 2]), "gradient", layer=layer)
        assert maps.shape == (2, 2 * CELL, 2 * CELL) and maps.max() > 0
    # DiFull / DiPart keep each cell's map through the dense head (no kernel there)
    for name in ("difull", "dipart"):
        other = G.build_setting(vgg_like, name)
        assert not any(isinstance(la, G.ClassifierKernel) for la in other.model.layers)


def test_weights_are_shared_not_copied():
    model = _vgg_like(seed=3)
    setting = G.build_setting(model, "gridpg")
    grid = _grid(2)
    before = np.asarray(setting.model(grid))
    fc1 = model.get_layer("fc1")
    fc1.kernel.assign(np.asarray(fc1.kernel) * 1.5 + 0.01)
    after = np.asarray(setting.model(grid))
    assert np.abs(after - before).max() > 1e-3
    _close(after, _direct(model, grid)[0])


def test_nested_trunk_and_save_load(vgg_like, tmp_path):
    inner = keras.Model(vgg_like.inputs, vgg_like.get_layer("block4_pool").output, name="trunk")
    nested = keras.Sequential([keras.Input((CELL, CELL, 3)), inner] + [vgg_like.get_layer(n) for n in HEAD],
                              name="nested_vgg_like")
    x1, grid = _grid(1), _grid(2)
    _close(np.asarray(nested(x1)), np.asarray(vgg_like(x1)))
    setting = G.build_setting(nested, "gridpg")
    assert setting.model.name == "gridpg_classifier_kernel"
    _close(np.asarray(setting.model(grid)), _direct(vgg_like, grid)[0])
    path = str(tmp_path / "gridpg_dense.keras")
    setting.model.save(path)
    loaded = keras.saving.load_model(path)
    _close(np.asarray(loaded(grid)), np.asarray(setting.model(grid)))


def test_heads_that_cannot_slide():
    with pytest.raises(ValueError, match="softmax"):
        G.build_setting(_vgg_like(softmax=True), "gridpg")
    normed = _vgg_like(head_norm=True)
    with pytest.raises(ValueError, match="BatchNormalization"):
        G.build_setting(normed, "gridpg")
    resized = G.build_setting(normed, "gridpg", resize=True)  # the explicit fallback still works
    assert resized.model.name == "gridpg_resized" and resized.model(_grid(2)).shape == (2, K)
    kernel = G.ClassifierKernel(keras.layers.Dense(3), (2, 2, 4))
    with pytest.raises(ValueError, match="channels"):
        kernel(np.zeros((1, 4, 4, 5), np.float32))


@pytest.mark.parametrize("native", app_sizes("Keras' VGG16 at 224 (a 448x448 grid)"))
def test_keras_vgg16_random_weights(native):
    """Keras' VGG16 (weights=None, logits): the 1x1 grid is the model; the 2x2 grid is every 7x7 window of the
    14x14 map through fc1/fc2/predictions, averaged (64 windows, as Rao's VGG11 at 448x448). By default the
    same graph at 64x64: every 2x2 window of the 4x4 map (9 windows)."""
    vgg = build_app("vgg16", native=native)
    side = vgg.input_shape[1]
    window = side // 32
    x = np.random.default_rng(1).normal(0, 50, (1, side, side, 3)).astype(np.float32)
    _close(np.asarray(G.build_setting(vgg, "gridpg", n=1).model(x)), np.asarray(vgg(x)))
    # the trunk on the grid once (its split equals the whole grid model: checked on the tiny model above),
    # then the GridPG head on the final map (14x14 at 224) against the windows cropped by hand
    features, head = G.build_setting(vgg, "gridpg", n=2).split("block5_pool")
    grid = np.random.default_rng(2).normal(0, 50, (1, 2 * side, 2 * side, 3)).astype(np.float32)
    fmap = np.asarray(features(grid))
    assert fmap.shape == (1, 2 * window, 2 * window, 512)
    want, windows = _direct(vgg, fmap, (), ("flatten", "fc1", "fc2", "predictions"), window=window)
    assert len(windows) == (window + 1) ** 2 and (not native or len(windows) == 64)
    _close(np.asarray(head(fmap)), want)
