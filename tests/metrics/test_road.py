"""ROAD (Rong et al. 2022): the noisy linear imputation and the MoRF/LeRF curves against a direct implementation."""
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfxattr
from tfxattr.metrics import METRICS, compute

road_module = sys.modules["tfxattr.metrics.road"]
SIZE = 12
# the paper's Eq. 9 weights, written out again: direct neighbours 1/6, diagonal ones 1/12
WEIGHTS = {(dy, dx): (1 / 12 if dy and dx else 1 / 6) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx}


def reference_imputation(image, removed):
    """'Each removed pixel = the weighted mean of its in-image neighbours', one equation per removed pixel
    written out in loops and solved densely (no sparse solver)."""
    h, w, c = image.shape
    todo = list(zip(*np.nonzero(removed)))
    index = {p: k for k, p in enumerate(todo)}
    a, b = np.zeros((len(todo), len(todo))), np.zeros((len(todo), c))
    for k, (y, x) in enumerate(todo):
        for (dy, dx), wt in WEIGHTS.items():
            if 0 <= y + dy < h and 0 <= x + dx < w:
                a[k, k] += wt
                if removed[y + dy, x + dx]:
                    a[k, index[(y + dy, x + dx)]] -= wt
                else:
                    b[k] += wt * image[y + dy, x + dx]
    out = image.astype(np.float64).copy()
    out[removed] = np.linalg.solve(a, b)
    return out


def region_model():
    """p(class 0) = sigmoid of the mean red level of the top-left quarter (centred), p(class 1) = 1 - that."""
    def fn(x):
        m = tf.reduce_mean(x[:, :SIZE // 2, :SIZE // 2, 0], [1, 2]) / 255.0
        p = tf.sigmoid(8.0 * (m - 0.5))
        return tf.stack([p, 1.0 - p], -1)
    return tfxattr.as_model(fn, input_shape=(SIZE, SIZE, 3), num_classes=2, output="probability")


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)
    images[:, :SIZE // 2, :SIZE // 2, 0] = 230.0  # the region the model reads is bright
    maps = rng.random((3, SIZE, SIZE))
    maps[0, :SIZE // 2, :SIZE // 2] += 1.0  # image 0: a map that finds the region
    return region_model(), images, maps


def test_linear_imputation_solves_the_neighbour_mean_system():
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 255, (7, 9, 2)).astype(np.float32)
    removed = rng.random((7, 9)) < 0.6
    got = road_module.linear_imputation(image, removed)
    np.testing.assert_array_equal(got[~removed], image[~removed])
    np.testing.assert_allclose(got, reference_imputation(image, removed), atol=1e-3)


def test_linear_imputation_reproduces_a_linear_ramp_inside_the_image():
    yy, xx = np.mgrid[0:10, 0:10]
    ramp = np.stack([3.0 * yy + 2.0 * xx, 100.0 - xx], -1).astype(np.float32)
    removed = np.zeros((10, 10), bool)
    removed[3:7, 2:8] = True  # an interior hole: a linear function is its own neighbour mean there
    np.testing.assert_allclose(road_module.linear_imputation(ramp, removed), ramp, atol=1e-3)


def test_noise_is_seeded_has_the_asked_spread_and_touches_only_removed_pixels():
    image = np.full((40, 40, 3), 100.0, np.float32)
    removed = np.zeros((40, 40), bool)
    removed[5:35, 5:35] = True
    a = road_module.noisy_linear_imputation(image, removed, 2.55, np.random.default_rng(3))
    b = road_module.noisy_linear_imputation(image, removed, 2.55, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[~removed], image[~removed])
    assert np.std(a[removed] - 100.0) == pytest.approx(2.55, rel=0.05)


def direct_road(adapter, images, maps, targets, fractions, measure="probability"):
    """MoRF / LeRF written out: rank by the map (ties in raster order), impute with the reference solver."""
    n, h, w, _ = images.shape
    x = [0.0] + list(fractions)
    curves = {"morf": np.zeros((n, len(x))), "lerf": np.zeros((n, len(x)))}
    for i in range(n):
        order = np.argsort(-maps[i].reshape(-1), kind="stable")
        for j, f in enumerate(x):
            k = int(round(f * h * w, 9))
            for name, chosen in (("morf", order[:k]), ("lerf", order[h * w - k:] if k else order[:0])):
                removed = np.zeros(h * w, bool)
                removed[chosen] = True
                img = reference_imputation(images[i], removed.reshape(h, w)) if k else images[i]
                p = adapter.probabilities(img[None].astype(np.float32))[0]
                curves[name][i, j] = p[targets[i]] if measure == "probability" else float(np.argmax(p) == targets[i])
    return {k: np.trapezoid(c, x, axis=1) / x[-1] for k, c in curves.items()}, curves


@pytest.mark.parametrize("measure", ["probability", "accuracy"])
def test_road_equals_the_direct_implementation_without_noise(setup, measure):
    adapter, images, maps = setup
    fractions = (0.1, 0.25, 0.5, 0.75)
    res = compute("road", adapter, images, maps, targets=0, fractions=fractions, noise=0.0, measure=measure)
    want, curves = direct_road(adapter, images, maps, np.zeros(3, int), fractions, measure)
    for name in ("morf", "lerf"):
        np.testing.assert_allclose(res.curves[name].y, curves[name], atol=1e-4)
        np.testing.assert_allclose(res.scores[name], want[name], atol=1e-4)
    assert not res.higher_is_better["morf"] and res.higher_is_better["lerf"]
    if measure == "probability":  # the map that finds the region removes the class first (MoRF) and last (LeRF)
        assert res.scores["morf"][0] < res.scores["morf"][1:].min()
        assert res.scores["lerf"][0] > res.scores["lerf"][1:].max()


def test_road_is_seeded_and_all_imputed_images_are_batched(setup, probability_calls):
    adapter, images, maps = setup
    a = compute("road", adapter, images, maps, targets=0, batch_size=32, seed=5)
    assert probability_calls == [3, 3 * 2 * 7]  # the originals, then 7 MoRF + 7 LeRF images of all 3 together
    b = compute("road", adapter, images, maps, targets=0, batch_size=4, seed=5)
    c = compute("road", adapter, images, maps, targets=0, seed=6)
    np.testing.assert_allclose(a.scores["morf"], b.scores["morf"], atol=1e-6)
    assert not np.allclose(a.curves["morf"].y, c.curves["morf"].y, atol=1e-7)


def test_road_skips_constant_maps_and_takes_labels(setup):
    adapter, images, maps = setup
    maps = maps.copy()
    maps[1] = 0.0
    res = compute("road", adapter, images, maps, targets=0, measure="accuracy", labels=[1, 1, 1])
    assert res.skipped["morf"] == {1: "constant map"} and np.isnan(res.scores["lerf"][1])
    assert METRICS["road"].uses_labels and set(METRICS["road"].curve_axes) == {"morf", "lerf"}


def test_road_bad_inputs(setup):
    adapter, images, maps = setup
    for fractions, message in [((0.5, 1.0), "must be < 1"), ((0.5, 0.2), "strictly increasing"),
                               ((0.0, 0.5), r"\(0, 1\]")]:
        with pytest.raises(ValueError, match=message):
            compute("road", adapter, images, maps, fractions=fractions)
    with pytest.raises(ValueError, match="measure must be one of"):
        compute("road", adapter, images, maps, measure="acc")
    with pytest.raises(ValueError, match="noise must be a number >= 0"):
        compute("road", adapter, images, maps, noise=-0.1)
    with pytest.raises(ValueError, match="labels must be one int or 3 ints"):
        compute("road", adapter, images, maps, labels=[0, 1])
    with pytest.raises(ValueError, match="every pixel is removed"):
        road_module.linear_imputation(images[0], np.ones((SIZE, SIZE), bool))
