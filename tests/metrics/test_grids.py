"""Rao et al. grids: settings, grid data sets, the localization score, layer-wise maps, smoothing, AggAtt."""
import keras
import numpy as np
import pytest
from PIL import Image

from tfxattr.metrics import grids as G

CELL = 64
K = 5


def _cnn(name, batch_norm):
    """A demo-like CNN: [0,255] pixels -> logits, fully convolutional with global pooling."""
    inputs = keras.Input((CELL, CELL, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for i, filters in enumerate((8, 16), start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm, name=f"block{i}_conv")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"block{i}_bn")(x)
        x = keras.layers.ReLU(name=f"block{i}_relu")(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(K, name="logits")(x), name=name)


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(1)
    return _cnn("tiny_untrained", batch_norm=False)


@pytest.fixture(scope="module")
def demo():
    try:
        from tfxattr.demo import load_demo_model
    except ImportError:  # the demo model is written concurrently; a demo-like CNN stands in
        keras.utils.set_random_seed(2)
        return _cnn("demo_stand_in", batch_norm=True)
    return load_demo_model()


@pytest.fixture(scope="module")
def cells():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (2, 4, CELL, CELL, 3)).astype(np.float32)


def _increasing_targets(model, cell_images):
    """Per cell, the class whose logit rises most from a black cell (positive IG / IDGI mass)."""
    gain = model.predict(cell_images, verbose=0) - model.predict(np.zeros_like(cell_images[:1]), verbose=0)
    return gain.argmax(1)


# -- (cell, class) <-> target, the grid layers -----------------------------------------------------
def test_target_mapping_roundtrip():
    cells, classes = np.meshgrid(np.arange(9), np.arange(K), indexing="ij")
    t = G.grid_target(cells, classes, K)
    assert sorted(t.ravel().tolist()) == list(range(9 * K))
    c, k = G.cell_and_class(t, K)
    np.testing.assert_array_equal(c, cells)
    np.testing.assert_array_equal(k, classes)
    with pytest.raises(ValueError, match="cls"):
        G.grid_target(0, K, K)


def test_tile_cells_and_grid_layers_roundtrip(cells):
    grid = G.tile_cells(cells)
    assert grid.shape == (2, 2 * CELL, 2 * CELL, 3)
    np.testing.assert_array_equal(grid[1, :CELL, CELL:], cells[1, 1])  # cell 1 = top right
    np.testing.assert_array_equal(grid[0, CELL:, :CELL], cells[0, 2])  # cell 2 = bottom left
    split = np.asarray(G.GridToCells(2)(grid))
    np.testing.assert_array_equal(split, cells.reshape(8, CELL, CELL, 3))
    np.testing.assert_array_equal(np.asarray(G.CellsToGrid(2)(split)), grid)


def test_grid_layers_keep_n_through_save_and_load(tiny, cells, tmp_path):
    for layer in (G.GridToCells(3), G.CellsToGrid(3), G.CellLogits(3)):
        assert type(layer).from_config(layer.get_config()).n == 3
    setting = G.build_setting(tiny, "dipart")
    path = str(tmp_path / "dipart.keras")
    setting.model.save(path)
    loaded = keras.saving.load_model(path)
    grid = G.tile_cells(cells)
    np.testing.assert_allclose(loaded.predict(grid, verbose=0), setting.model.predict(grid, verbose=0), rtol=1e-5)


# -- settings --------------------------------------------------------------------------------------
def test_difull_output_is_each_cell_through_the_classifier(tiny, cells):
    setting = G.build_setting(tiny, "difull")
    out = setting.model.predict(G.tile_cells(cells), verbose=0)
    assert out.shape == (2, 4 * K)
    per_cell = tiny.predict(cells.reshape(-1, CELL, CELL, 3), verbose=0).reshape(2, 4, K)
    for cell in range(4):
        idx = setting.target(cell, np.arange(K))
        np.testing.assert_allclose(out[:, idx], per_cell[:, cell], rtol=1e-5, atol=1e-5)


def test_dipart_output_equals_per_cell_heads_by_hand(tiny, cells):
    setting = G.build_setting(tiny, "dipart")
    assert setting.layer == "last_conv"
    grid = G.tile_cells(cells)
    out = setting.model.predict(grid, verbose=0)
    x = grid / 255.0
    for name in ("block1_conv", "block1_relu", "block1_pool", "block2_conv", "block2_relu", "block2_pool",
                 "last_conv"):
        x = tiny.get_layer(name)(x)
    fmap = np.asarray(x)
    s = fmap.shape[1] // 2
    assert fmap.shape[1:3] == (2 * CELL // 4, 2 * CELL // 4)
    for cell in range(4):
        r, c = divmod(cell, 2)
        piece = fmap[:, r * s:(r + 1) * s, c * s:(c + 1) * s]
        expected = np.asarray(tiny.get_layer("logits")(piece.mean(axis=(1, 2))))
        np.testing.assert_allclose(out[:, setting.target(cell, np.arange(K))], expected, rtol=1e-4, atol=1e-5)
    # the cells are only partially disconnected: a border pixel of cell 1 moves cell 0's logits
    bumped = grid.copy()
    bumped[:, :CELL, CELL] += 50.0
    moved = setting.model.predict(bumped, verbose=0) - out
    assert np.abs(moved[:, setting.target(0, np.arange(K))]).max() > 0


def test_gridpg_whole_grid_and_fixed_size_models(tiny, cells):
    setting = G.build_setting(tiny, "gridpg")
    assert setting.model.output_shape == (None, K) and setting.target(3, 2) == 2
    grid = G.tile_cells(cells)
    x = grid / 255.0
    for name in ("block1_conv", "block1_relu", "block1_pool", "block2_conv", "block2_relu", "block2_pool",
                 "last_conv", "gap", "logits"):
        x = tiny.get_layer(name)(x)
    np.testing.assert_allclose(setting.model.predict(grid, verbose=0), np.asarray(x), rtol=1e-4, atol=1e-5)
    flat_in = keras.Input((CELL, CELL, 3))
    flat = keras.Model(flat_in, keras.layers.Dense(K)(keras.layers.Flatten()(flat_in)))
    with pytest.raises(ValueError, match="resize=True"):
        G.build_setting(flat, "gridpg")
    resized = G.build_setting(flat, "gridpg", resize=True)
    assert resized.model.predict(G.tile_cells(cells), verbose=0).shape == (2, K)
    with pytest.raises(ValueError, match="setting"):
        G.build_setting(tiny, "grid")
    with pytest.raises(ValueError, match="layer"):
        G.build_setting(tiny, "difull", layer="last_conv")


# -- the MUST: DiFull localizes gradient methods exactly at the input ----------------------------
METHODS = {"gradient": {}, "ig": {"steps": 16}, "ig+idgi": {"steps": 16}, "ggig": {"steps": 4, "ascent_steps": 3}}


@pytest.mark.parametrize("which", ["demo", "tiny"])
def test_difull_input_layer_localization_is_exactly_one(which, request, cells):
    model = request.getfixturevalue(which)
    setting = G.build_setting(model, "difull")
    grid = G.tile_cells(cells)
    classes = _increasing_targets(model, cells.reshape(-1, CELL, CELL, 3)).reshape(2, 4)
    grid_idx, cell_idx = np.repeat([0, 1], 2), np.tile([0, 3], 2)
    targets = setting.target(cell_idx, classes[grid_idx, cell_idx])
    for method, options in METHODS.items():
        maps = G.layer_maps(setting, grid[grid_idx], targets, method, **options)
        assert maps.shape == (4, 2 * CELL, 2 * CELL)
        masses = G.cell_masses(maps, 2)
        assert np.all(masses[np.arange(4), cell_idx] > 0), method
        outside = np.ones((4, 4), bool)
        outside[np.arange(4), cell_idx] = False
        assert np.all(masses[outside] == 0.0), method
        scores, _ = G.localization_scores(maps, cell_idx, 2)
        assert np.all(scores == 1.0), (method, scores)


def test_layerwise_maps_middle_and_final(tiny, cells):
    grid = G.tile_cells(cells)
    layers = G.rao_layers(tiny)
    assert layers == {"input": None, "middle": "block2_conv", "final": "last_conv"}
    difull, gridpg = G.build_setting(tiny, "difull"), G.build_setting(tiny, "gridpg")
    cell_idx = np.array([0, 3])
    signed = G.layer_maps(difull, grid, difull.target(cell_idx, 1), "gradient", reduce="sum")
    np.testing.assert_allclose(np.abs(signed), G.layer_maps(difull, grid, difull.target(cell_idx, 1), "gradient",
                                                            reduce="abs_sum"), rtol=1e-6)
    assert signed.min() < 0
    for layer in (layers["middle"], layers["final"]):
        maps = G.layer_maps(difull, grid, difull.target(cell_idx, 1), "gradient", layer=layer)
        assert maps.shape == (2, 2 * CELL, 2 * CELL) and maps.min() >= 0  # |gradient|, as Rao
        scores, _ = G.localization_scores(maps, cell_idx, 2)
        # bilinear upsampling (Rao's) lets a sliver of the cell's map spill over the cell border
        assert np.all(scores > 0.95) and np.all(scores <= 1.0)
        pg = G.layer_maps(gridpg, grid, np.array([1, 1]), "gradient", layer=layer)
        assert np.all(G.localization_scores(pg, cell_idx, 2)[0] < 0.9)
    # the activation through the head reproduces the setting's output
    features, head = difull.split(layers["final"])
    np.testing.assert_allclose(head(features(grid)), difull.model(grid), rtol=1e-5, atol=1e-5)


# -- localization score --------------------------------------------------------------------------
def test_localization_score_hand_checked():
    m = np.zeros((4, 4, 4))
    m[0, :2, :2] = 1.0                     # all positive mass in cell 0
    m[1, :2, :2], m[1, 2:, 2:] = 1.0, 3.0  # 4 in cell 0, 12 in cell 3
    m[1, :2, 2:] = -5.0                    # negative attribution is ignored
    m[2] = -1.0                            # no positive mass -> 0
    m[3, 0, 0], m[3, 3, 0] = 2.0, 6.0      # cell 0: 2, cell 2: 6
    scores, inside = G.localization_scores(m, [0, 3, 0, 2], 2)
    np.testing.assert_allclose(scores, [1.0, 12 / 16, 0.0, 0.75])
    np.testing.assert_allclose(inside, [4.0, 12.0, 0.0, 6.0])
    np.testing.assert_allclose(G.localization_scores(m, 1, 2)[0], [0.0, 0.0, 0.0, 0.0])
    # "~0" is relative to the map's own scale: tiny maps still score, a sliver of positive mass does not
    np.testing.assert_allclose(G.localization_scores(m * 1e-16, [0, 3, 0, 2], 2)[0], [1.0, 0.75, 0.0, 0.75])
    sliver = np.full((1, 4, 4), -1.0)
    sliver[0, 0, 0] = 1e-9
    assert G.localization_scores(sliver, [0], 2)[0][0] == 0.0
    assert G.localization_scores(sliver, [0], 2, eps=0.0)[0][0] == 1.0
    # bilinear 2x2 -> 4x4 (half-pixel centres): each row/column [a, b] -> [a, .75a+.25b, .25a+.75b, b]
    up = np.array([[[1.0, 0.0], [0.0, 3.0]]])
    u, v = np.array([1, .75, .25, 0]), np.array([0, .25, .75, 1])
    np.testing.assert_allclose(G.upsample(up, (4, 4))[0], np.outer(u, u) + 3 * np.outer(v, v), rtol=1e-6)
    np.testing.assert_allclose(G.localization_scores(up, [3], 2, size=(4, 4))[0][0], (0.25 ** 2 + 3 * 1.75 ** 2) / 16)
    assert 1 / 4 == pytest.approx(G.localization_scores(np.ones((1, 6, 6)), [2], 2)[0][0])
    with pytest.raises(ValueError, match="divisible"):
        G.localization_scores(np.ones((1, 5, 5)), [0], 2)
    with pytest.raises(ValueError, match="cells"):
        G.localization_scores(np.ones((1, 4, 4)), [4], 2)


# -- grid data sets ------------------------------------------------------------------------------
def _colour_classifier():
    """4 classes; an image whose channel c holds v (others 0) has logits v * e_c: known confidence."""
    inputs = keras.Input((8, 8, 4))
    dense = keras.layers.Dense(4, use_bias=False)
    out = dense(keras.layers.GlobalAveragePooling2D()(inputs))
    dense.set_weights([np.eye(4, dtype=np.float32)])
    return keras.Model(inputs, out)


def _colour_data(n=80, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    strength = rng.uniform(0.0, 10.0, n)
    images = np.zeros((n, 8, 8, 4), np.float32)
    images[np.arange(n), :, :, labels] = strength[:, None, None]
    given = labels.copy()
    given[:5] = (labels[:5] + 1) % 4  # five wrong labels: never eligible
    conf = np.exp(strength) / (np.exp(strength) + 3.0)
    return images, given, conf, labels


@pytest.mark.parametrize("threshold", [0.99, 0.6])
def test_grid_dataset_respects_threshold_and_gridpg_placement(threshold):
    model = _colour_classifier()
    images, given, conf, _ = _colour_data()
    expected = np.flatnonzero((conf >= threshold) & (np.arange(len(conf)) >= 5))
    np.testing.assert_array_equal(G.confident_indices(model, images, given, threshold), expected)
    ds = G.make_grid_dataset(model, images, given, "gridpg", n=2, num_grids=6, threshold=threshold, seed=3)
    assert ds.images.shape == (6, 16, 16, 4) and len(ds) == 24
    assert set(ds.sources.ravel()) <= set(expected)
    for g in range(6):
        assert len(set(ds.labels[g])) == 4  # distinct classes
        np.testing.assert_array_equal(ds.labels[g], given[ds.sources[g]])
        for cell in range(4):
            r, c = divmod(cell, 2)
            np.testing.assert_array_equal(ds.images[g, 8 * r:8 * r + 8, 8 * c:8 * c + 8], images[ds.sources[g, cell]])
    np.testing.assert_array_equal(ds.cells, np.tile(np.arange(4), 6))
    np.testing.assert_array_equal(ds.classes, ds.labels[ds.grid, ds.cells])
    np.testing.assert_array_equal(ds.eval_images()[5], ds.images[1])
    again = G.make_grid_dataset(model, images, given, "gridpg", num_grids=6, threshold=threshold, seed=3)
    np.testing.assert_array_equal(again.sources, ds.sources)
    other = G.make_grid_dataset(model, images, given, "gridpg", num_grids=6, threshold=threshold, seed=4)
    assert not np.array_equal(other.sources, ds.sources)


def test_grid_dataset_corners_for_difull_and_dipart():
    model = _colour_classifier()
    images, given, conf, _ = _colour_data()
    ds = G.make_grid_dataset(model, images, given, "difull", n=2, num_grids=8, threshold=0.9, seed=0)
    assert np.all(conf[ds.sources] >= 0.9)
    np.testing.assert_array_equal(ds.labels[:, 0], ds.labels[:, 3])          # same class at the corners
    assert np.all(ds.labels[:, 1:3] != ds.labels[:, :1])                      # other classes elsewhere
    assert all(len(set(row)) == 4 for row in ds.sources)                      # no image twice in a grid
    np.testing.assert_array_equal(ds.cells, np.tile([0, 3], 8))               # only the corners
    np.testing.assert_array_equal(ds.grid, np.repeat(np.arange(8), 2))
    setting_k = 4
    np.testing.assert_array_equal(np.asarray(ds.cells) * setting_k + ds.classes,
                                  G.grid_target(ds.cells, ds.classes, setting_k))
    three = G.make_grid_dataset(model, images, given, "dipart", n=3, num_grids=2, threshold=0.9, seed=0)
    assert three.images.shape == (2, 24, 24, 4)
    np.testing.assert_array_equal(three.cells, np.tile([0, 8], 2))
    np.testing.assert_array_equal(three.labels[:, 0], three.labels[:, 8])
    with pytest.raises(ValueError, match="distinct classes"):
        G.make_grid_dataset(model, images, given, "gridpg", n=3, num_grids=1, threshold=0.5)
    with pytest.raises(ValueError, match="threshold"):
        G.make_grid_dataset(model, images, given, "gridpg", threshold=1.5)


# -- smoothing -----------------------------------------------------------------------------------
def test_gaussian_smoothing_preserves_mass():
    k = G.gaussian_kernel(9)
    assert k.shape == (9,) and k.sum() == pytest.approx(1.0) and k.argmax() == 4
    maps = np.zeros((2, 40, 40))
    maps[0, 20, 20] = 5.0
    maps[1, 12:28, 10:30] = np.random.default_rng(0).normal(size=(16, 20))
    out = G.gaussian_smooth(maps, 9)
    np.testing.assert_allclose(out.sum(axis=(1, 2)), maps.sum(axis=(1, 2)), rtol=1e-5, atol=1e-5)
    assert out[0].max() < 5.0 and out[0, 20, 20] == out[0].max()
    np.testing.assert_allclose(out[0, 16:25, 20], 5.0 * k * k[4], rtol=1e-5)
    flat = G.gaussian_smooth(np.ones((1, 30, 30)), 5)
    np.testing.assert_allclose(flat[0, 2:-2, 2:-2], 1.0, rtol=1e-6)
    assert flat[0, 0, 0] < 1.0  # zero padding at the border
    for bad in (4, 0, 2.0):
        with pytest.raises(ValueError, match="kernel_size"):
            G.gaussian_smooth(maps, bad)


# -- AggAtt --------------------------------------------------------------------------------------
def test_aggatt_bins_shape_and_ordering(tmp_path):
    n_maps = 100
    rng = np.random.default_rng(0)
    maps = rng.uniform(0, 1, (n_maps, 8, 8))
    inside_frac = rng.uniform(0, 1, n_maps)
    maps[:, :4, :4] *= inside_frac[:, None, None] * 10
    maps[:10, :4, :4] = 0.0
    maps[:10, :1, :1] = 1.0 + np.arange(10)[:, None, None]  # a tie: all 10 score exactly ...
    maps[:10, :, 4:] = 0.0
    maps[:10, 4:, :] = 0.0                                 # ... 1.0, broken by the mass inside
    res = G.aggatt(maps, np.zeros(n_maps, int), 2, cell=0)
    assert res.bins.shape == (6, 8, 8)
    np.testing.assert_array_equal(res.counts, [2, 3, 45, 45, 3, 2])
    assert np.all(np.diff(res.scores) <= 0)
    np.testing.assert_array_equal(res.order[:10], np.arange(10)[::-1])
    np.testing.assert_allclose(res.bins[0], maps[[9, 8]].mean(0), rtol=1e-6)
    np.testing.assert_allclose(res.bins[-1], np.clip(maps[res.order[-2:]], 0, None).mean(0), rtol=1e-6)
    assert 0 < res.scale <= res.bins.max()
    # only the maps of the requested cell are binned
    cells = np.r_[np.zeros(n_maps, int), np.ones(n_maps, int)]
    assert G.aggatt(np.r_[maps, -maps], cells, 2, cell=0).order.max() < n_maps
    with pytest.raises(ValueError, match="bin empty"):
        G.aggatt(maps[:20], np.zeros(20, int), 2)
    path = G.save_aggatt_png({"ig": res, "gradient": G.aggatt(maps[::-1], np.zeros(n_maps, int), 2)},
                             str(tmp_path / "aggatt.png"), tile=32)
    img = np.asarray(Image.open(path))
    assert img.ndim == 3 and img.shape[0] > 2 * 32 and img.shape[1] > 6 * 32


# -- nested models, the registry view, one-call evaluation -----------------------------------------
def test_nested_model_layer_paths_and_errors():
    keras.utils.set_random_seed(4)
    inner = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, padding="same", name="ca"),
                              keras.layers.ReLU(name="ra"), keras.layers.GlobalAveragePooling2D(name="g"),
                              keras.layers.Dense(3, name="d")], name="inner")
    outer = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255.0), inner], name="outer")
    assert G.rao_layers(outer) == {"input": None, "middle": "inner/ca", "final": "inner/ra"}
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    cell_idx = np.array([0, 3])
    for name in G.SETTINGS:
        setting = G.build_setting(outer, name)
        for layer in ("inner/ca", "ca"):
            maps = G.layer_maps(setting, x, setting.target(cell_idx, 1), "gradient", layer=layer)
            assert maps.shape == (2, 32, 32)
        with pytest.raises(ValueError, match="no spatial output"):
            G.layer_maps(setting, x, setting.target(cell_idx, 1), "gradient", layer="g")
    assert G.build_setting(outer, "dipart").layer == "inner/ra"
    with pytest.raises(ValueError, match="no spatial output"):
        G.build_setting(outer, "dipart", layer="d")


def test_registry_view_and_evaluate_localization():
    from tfxattr.metrics import METRICS, compute

    assert "grid_localization" in METRICS
    maps = np.zeros((2, 2, 2, 3))
    maps[0, 0, 0], maps[1, 1, 1] = 1.0, 1.0
    res = compute("grid_localization", None, np.zeros((2, 8, 8, 3)), maps, cells=[0, 0])
    # channels summed, bilinear 2 -> 8 (weights of the first pixel: 1, 1, .875, .625 | .375, .125, 0, 0)
    np.testing.assert_allclose(res.scores["localization"], [3.5 ** 2 / 16, 0.5 ** 2 / 16])
    assert res.metric == "grid_localization" and res.extras["chance"] == 0.25 and res.higher_is_better["localization"]
    with pytest.raises(ValueError, match="cells"):
        compute("grid_localization", None, None, maps)
    with pytest.raises(ValueError, match="unknown option"):
        compute("grid_localization", None, None, maps, cells=0, cell=0)
    with pytest.raises(ValueError, match="reduce"):
        compute("grid_localization", None, None, maps, cells=0, reduce="max")

    model = _colour_classifier()  # global pooling + dense: takes any grid
    images, given, _, _ = _colour_data()
    difull = G.build_setting(model, "difull")
    corners = G.make_grid_dataset(model, images, given, "difull", num_grids=3, threshold=0.9, seed=1)
    out = G.evaluate_localization(difull, corners, "gradient", keep_maps=True)
    np.testing.assert_array_equal(out.scores["localization"], 1.0)
    assert out.extras["maps"].shape == (6, 16, 16) and out.options["setting"] == "difull"
    np.testing.assert_array_equal(out.targets, corners.targets(difull))
    gridpg = G.build_setting(model, "gridpg")
    distinct = G.make_grid_dataset(model, images, given, "gridpg", num_grids=3, threshold=0.9, seed=1)
    pg = G.evaluate_localization(gridpg, distinct, "ig", steps=8)
    assert pg.scores["localization"].shape == (12,) and pg.aggregate()["localization"] > 0.25
    with pytest.raises(ValueError, match="distinct classes"):
        G.evaluate_localization(gridpg, corners, "gradient")
    with pytest.raises(ValueError, match="do not fit"):
        G.evaluate_localization(G.build_setting(model, "difull", n=3), corners, "gradient")
