"""MuFidelity (Bhatt et al. 2020, Def. 3) against a direct implementation, its paper property, batching, errors."""
import sys

import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import spearmanr

import tfxattr
from tfxattr.metrics import compute

mufidelity_module = sys.modules["tfxattr.metrics.mufidelity"]
SIZE = 12
WEIGHTS = np.random.default_rng(7).normal(size=(SIZE, SIZE, 3)).astype(np.float32)


def linear_model():
    """Logit 0 = sum(w * x) / 255, logit 1 = its negative: an additive model."""
    w = tf.constant(WEIGHTS / 255.0)

    def fn(x):
        s = tf.reduce_sum(x * w, [1, 2, 3])
        return tf.stack([s, -s], -1)
    return tfxattr.as_model(fn, input_shape=(SIZE, SIZE, 3), num_classes=2, output="logit")


def smooth_model():
    """A non-additive model: logit 0 = tanh of the mean of the top-left quarter and the square of the rest."""
    def fn(x):
        a = tf.reduce_mean(x[:, :6, :6, :], [1, 2, 3]) / 255.0
        b = tf.reduce_mean(x[:, 6:, :, 1], [1, 2]) / 255.0
        s = tf.tanh(3 * a) + b * b
        return tf.stack([s, -s], -1)
    return tfxattr.as_model(fn, input_shape=(SIZE, SIZE, 3), num_classes=2, output="logit")


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)


def test_grid_cells_follow_nearest_neighbour_resizing():
    for size, grid in [(12, 5), (224, 9), (7, 7)]:
        row = np.minimum(np.floor((np.arange(size) + 0.5) * grid / size), grid - 1).astype(int)
        np.testing.assert_array_equal(mufidelity_module.grid_cells(size, size, grid), row[:, None] * grid + row)
    np.testing.assert_array_equal(mufidelity_module.grid_cells(3, 4, None), np.arange(12).reshape(3, 4))


def test_subsets_have_exactly_the_asked_size_and_are_seeded():
    a = mufidelity_module.random_subsets(81, 16, 50, seed=3)
    assert a.shape == (50, 81) and np.all(a.sum(1) == 16)
    np.testing.assert_array_equal(a, mufidelity_module.random_subsets(81, 16, 50, seed=3))
    assert len({row.tobytes() for row in a}) == 50


def direct_mufidelity(adapter, images, maps, targets, subsets, cells, baseline_value, correlation):
    """Def. 3 written out: per subset, set its cells to the baseline, take the logit drop and the map's sum."""
    out = []
    for i in range(len(images)):
        drops, sums = [], []
        full = adapter.scores(images[i:i + 1])[0, targets[i]]
        for subset in subsets:
            pixels = np.isin(cells, np.flatnonzero(subset))
            x = images[i].copy()
            x[pixels] = baseline_value
            drops.append(full - adapter.scores(x[None])[0, targets[i]])
            sums.append(maps[i][pixels].sum())
        drops, sums = np.array(drops, np.float64), np.array(sums, np.float64)
        if correlation == "pearson":
            d, s = drops - drops.mean(), sums - sums.mean()
            out.append((d * s).sum() / np.sqrt((d * d).sum() * (s * s).sum()))
        else:
            out.append(spearmanr(drops, sums).statistic)
    return np.array(out)


@pytest.mark.parametrize("correlation,grid_size", [("pearson", 4), ("spearman", 4), ("pearson", None)])
def test_mufidelity_equals_the_direct_implementation(images, correlation, grid_size):
    adapter = smooth_model()
    maps = np.random.default_rng(2).random((3, SIZE, SIZE))
    maps[:, :6, :6] += 0.5
    res = compute("mufidelity", adapter, images, maps, targets=[0, 0, 1], samples=30, subset_fraction=0.25,
                  grid_size=grid_size, correlation=correlation, baseline="black", seed=4)
    cells = mufidelity_module.grid_cells(SIZE, SIZE, grid_size)
    subsets = res.extras["subsets"]
    assert subsets.shape == (30, cells.max() + 1) and np.all(subsets.sum(1) == round(0.25 * (cells.max() + 1)))
    want = direct_mufidelity(adapter, images, maps, [0, 0, 1], subsets, cells, 0.0, correlation)
    np.testing.assert_allclose(res.scores["mufidelity"], want, atol=1e-5)
    assert res.higher_is_better["mufidelity"]


def test_an_exact_additive_explanation_has_mufidelity_one(images):
    """Bhatt et al.: mu_F = 1 when the attributions of every subset add up to the output's drop; here the
    model is linear and the map is w * (x - baseline) summed over channels, so each drop equals each sum."""
    maps = (WEIGHTS / 255.0 * images).sum(-1)
    res = compute("mufidelity", linear_model(), images, maps, targets=0, samples=40, grid_size=None)
    np.testing.assert_allclose(res.scores["mufidelity"], 1.0, atol=1e-6)
    np.testing.assert_allclose(res.extras["drops"], res.extras["attribution_sums"], rtol=1e-3, atol=1e-4)
    flipped = compute("mufidelity", linear_model(), images, -maps, targets=0, samples=40, grid_size=None)
    np.testing.assert_allclose(flipped.scores["mufidelity"], -1.0, atol=1e-6)


def test_perturbed_images_go_through_the_model_in_batches(images, monkeypatch):
    adapter = smooth_model()
    sizes, real = [], type(adapter).scores

    def counting(self, x, batch_size=None):
        sizes.append(len(x))
        return real(self, x, batch_size)
    monkeypatch.setattr(type(adapter), "scores", counting)
    maps = np.random.default_rng(3).random((3, SIZE, SIZE))
    compute("mufidelity", adapter, images, maps, targets=0, samples=20, grid_size=4, batch_size=16)
    assert sizes == [16, 16, 16, 12, 3]  # 3 x 20 (image, subset) rows in chunks of 16, then the originals


def test_images_without_variation_and_constant_maps_are_skipped(images):
    maps = np.random.default_rng(3).random((3, SIZE, SIZE))
    maps[1] = 2.0
    maps[2, :6, :6] = 0.0  # the map is zero where the model looks; the model ignores everything else
    flat = tfxattr.as_model(lambda x: tf.stack([tf.reduce_mean(x[:, :6, :6], [1, 2, 3]), tf.zeros(len(x))], -1),
                            input_shape=(SIZE, SIZE, 3), num_classes=2, output="logit")
    blank = images.copy()
    blank[0] = 0.0  # image 0 is black: setting it to the black baseline changes nothing
    res = compute("mufidelity", flat, blank, maps, targets=0, samples=20, grid_size=3)
    assert res.skipped["mufidelity"][0] == mufidelity_module.NO_VARIATION
    assert res.skipped["mufidelity"][1] == "constant map"
    assert np.isfinite(res.scores["mufidelity"][2])


def test_mufidelity_bad_inputs(images):
    adapter, maps = smooth_model(), np.random.default_rng(3).random((3, SIZE, SIZE))
    for options, message in [({"subset_fraction": 0.0}, "must select at least one cell"),
                             ({"subset_fraction": 1.0}, "leave at least one"),
                             ({"subset_fraction": 1.5}, r"subset_fraction must be a number in \[0.0, 1.0\]"),
                             ({"grid_size": 13}, "grid_size must be at most the image size 12"),
                             ({"grid_size": 0}, "grid_size must be a positive integer"),
                             ({"samples": 0}, "samples must be a positive integer"),
                             ({"samples": 2}, "samples must be at least 3"),
                             ({"correlation": "pearsn"}, "did you mean 'pearson'"),
                             ({"output": "probabilities"}, "did you mean 'probability'"),
                             ({"baseline": "grey"}, "baseline must be")]:
        with pytest.raises(ValueError, match=message):
            compute("mufidelity", adapter, images, maps, **options)
