"""SIC/AIC equal PAIR's compute_pic_metric; information levels; batching; skips."""
import numpy as np
import pytest
import saliency.metrics.pic as pair_pic
import tensorflow as tf

import tfxattr
from tfxattr.metrics import METRICS, PAIR_THRESHOLDS, compute
from tfxattr.metrics.pic import _one_blas_thread, interpolate_unknown, msssim_settings, msssim_to, pil_blur

SIZE = 20  # small: PAIR triangulates every channel of every threshold
THRESHOLDS = (0.01, 0.03, 0.1, 0.25, 0.5)


def textured_images(n, size=SIZE, seed=0):
    """uint8 images with stripes, gradients and noise (lots of edges, so blurring lowers the score)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = []
    for k in range(n):
        base = np.stack([(xx * (6 + k)) % 256, (yy * (5 + 2 * k)) % 256, ((xx + yy) * 4) % 256], -1)
        out.append(np.clip(base + rng.integers(-40, 40, base.shape), 0, 255))
    return np.asarray(out, np.uint8)


def edge_energy(x):
    lap = np.zeros((3, 3, 3, 1), np.float32)
    lap[..., 0] = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)[..., None]
    return tf.reduce_mean(tf.abs(tf.nn.conv2d(x / 255.0, lap, 1, "VALID")), [1, 2, 3])


def edge_model(threshold, gain):
    """Two classes: class 0 when the image has more edge energy than ``threshold`` (smooth scores)."""
    def fn(x):
        z = gain * (edge_energy(x) - threshold)
        return tf.stack([z, -z], -1)
    return tfxattr.as_model(fn, input_shape=(SIZE, SIZE, 3), num_classes=2, output="probability")


@pytest.fixture(scope="module")
def setup():
    images = textured_images(3)
    np.random.seed(7)
    seed_mask = pair_pic.generate_random_mask(SIZE, SIZE, fraction=0.01)
    e_orig = edge_energy(tf.constant(images, tf.float32)).numpy()
    e_base = edge_energy(tf.constant(np.stack([interpolate_unknown(i, seed_mask) for i in images]),
                                     tf.float32)).numpy()
    threshold = float((e_orig.min() + e_base.max()) / 2)
    model = edge_model(threshold, gain=4.0 / (e_orig.min() - threshold))
    maps = np.random.default_rng(1).random((3, SIZE, SIZE)) + np.abs(np.gradient(images[..., 0].astype(float),
                                                                                 axis=2)) / 50.0
    return model, images, maps, seed_mask


def pair_result(model, image, saliency_map, seed_mask, target, metric, monkeypatch, **kw):
    monkeypatch.setattr(pair_pic.np, "trapz", np.trapezoid, raising=False)  # PAIR's np.trapz is gone in NumPy 2

    def pred(batch):
        p = model.probabilities(batch.astype(np.float32))
        return p[:, target] if metric == "sic" else (np.argmax(p, -1) == target).astype(np.float64)
    with _one_blas_thread():  # as fast as ours when threadpoolctl is installed
        return pair_pic.compute_pic_metric(image, saliency_map, seed_mask, pred, THRESHOLDS, **kw)


def test_interpolated_image_equals_pair_create_blurred_image():
    img = textured_images(1)[0]
    rng = np.random.default_rng(3)
    for fraction in (0.01, 0.3, 0.9):
        known = rng.random((SIZE, SIZE)) < fraction
        with _one_blas_thread():
            ref = pair_pic.create_blurred_image(img, known)
        np.testing.assert_array_equal(interpolate_unknown(img, known), ref)
    np.testing.assert_array_equal(interpolate_unknown(img, np.ones((SIZE, SIZE), bool)), img)


@pytest.mark.parametrize("metric", ["sic", "aic"])
def test_sic_aic_equal_pair_compute_pic_metric(setup, monkeypatch, metric):
    model, images, maps, seed_mask = setup
    ours = compute("sic_aic", model, images.astype(np.float32), maps, targets=0, random_mask=seed_mask,
                   thresholds=THRESHOLDS, min_pred_value=0.5, batch_size=16)
    refs = []
    for i in range(len(images)):
        ref = pair_result(model, images[i], maps[i], seed_mask, 0, metric, monkeypatch, min_pred_value=0.5)
        refs.append(ref)
        assert i not in ours.skipped[metric]
        assert abs(ours.scores[metric][i] - ref.auc) < 1e-6
        np.testing.assert_allclose(ours.curves[metric].y[i], ref.curve_y, atol=1e-6)
        np.testing.assert_allclose(ours.curves[metric].x, ref.curve_x, atol=0)
    agg = pair_pic.aggregate_individual_pic_results(refs, method="median")
    assert abs(ours.aggregate()[metric] - agg.auc) < 1e-6
    assert abs(ours.aggregate("mean")[metric] - pair_pic.aggregate_individual_pic_results(refs, "mean").auc) < 1e-6
    assert 0.0 < ours.scores[metric].min() and ours.scores[metric].max() <= 1.0


def test_sic_aic_equal_pair_on_demo_model(monkeypatch):
    from tfxattr import demo

    model = tfxattr.as_model(demo.load_demo_model(), output="probability")
    data = demo.make_demo_data(1, seed=5)
    image = np.asarray(data["images"][0], np.uint8)
    h, w = image.shape[:2]
    saliency_map = np.random.default_rng(0).random((h, w)) + data["masks"][0]
    np.random.seed(0)
    seed_mask = pair_pic.generate_random_mask(h, w)
    target = int(data["labels"][0])
    ours = compute("sic_aic", model, image[None].astype(np.float32), saliency_map[None], targets=target,
                   random_mask=seed_mask, thresholds=THRESHOLDS, min_pred_value=0.5)
    for metric in ("sic", "aic"):
        ref = pair_result(model, image, saliency_map, seed_mask, target, metric, monkeypatch, min_pred_value=0.5)
        assert abs(ours.scores[metric][0] - ref.auc) < 1e-6


def test_images_below_the_confidence_floor_are_reported_as_skipped(setup, monkeypatch):
    model, images, maps, seed_mask = setup
    res = compute("sic_aic", model, images.astype(np.float32), maps, targets=1, random_mask=seed_mask,
                  thresholds=THRESHOLDS)
    assert np.all(np.isnan(res.scores["sic"])) and np.all(np.isnan(res.scores["aic"]))
    for name in ("sic", "aic"):
        assert sorted(res.skipped[name]) == [0, 1, 2]
        assert all("min_pred_value=0.8" in reason for reason in res.skipped[name].values())
    with pytest.raises(pair_pic.ComputePicMetricError, match="min_pred_value"):
        pair_result(model, images[0], maps[0], seed_mask, 1, "sic", monkeypatch)
    assert np.isnan(res.aggregate()["sic"])
    assert "0 used, 3 skipped" in res.summary()


def test_all_thresholds_of_several_images_share_model_calls(setup, probability_calls):
    model, images, maps, seed_mask = setup
    sizes = probability_calls
    compute("sic_aic", model, images.astype(np.float32), maps, targets=0, random_mask=seed_mask,
            min_pred_value=0.5, batch_size=64)
    # the originals once, then base + 13 thresholds for all three images in one call
    assert sizes == [3, 3 * (len(PAIR_THRESHOLDS) + 1)]


def test_msssim_settings_fit_small_images():
    assert msssim_settings(224, 224) == (11, (0.0448, 0.2856, 0.3001, 0.2363, 0.1333))  # TF's defaults
    size, power = msssim_settings(64, 64)
    assert size == 11 and len(power) == 3 and abs(sum(power) - 1) < 1e-9
    assert msssim_settings(161, 200)[1].__len__() == 5 and len(msssim_settings(160, 200)[1]) == 4
    assert msssim_settings(8, 8) == (8, (1.0,))
    for s in (8, 32, 64, 160):
        img = textured_images(1, size=s)[0]
        levels = msssim_to(img, np.stack([pil_blur(img, 2.0), img]))
        assert levels[0] == pytest.approx(1.0, abs=1e-5) and levels[2] == pytest.approx(1.0, abs=1e-5)
        assert levels[1] < 0.99


@pytest.mark.parametrize("name", ["sic_aic_idgi", "sic_aic_idgi_msssim", "sic_aic_ggig"])
def test_presets_run_and_score_in_unit_range(setup, name):
    model, images, maps, _ = setup
    res = METRICS[name](model, images.astype(np.float32), maps, targets=0, batch_size=32, blur_radius=3.0)
    assert set(res.scores) == {"sic", "aic"}
    for key in ("sic", "aic"):
        kept = res.kept(key)
        assert len(kept) + len(res.skipped[key]) == 3
        assert np.all((res.scores[key][kept] >= 0) & (res.scores[key][kept] <= 1))
    assert res.curves["sic"].x.shape == ((101,) if "idgi" in name else (1001,))


def test_blur_base_reveals_exact_pixels_and_threshold_one_is_the_original():
    img = textured_images(1)[0]
    from tfxattr.metrics.pic import bokeh_images
    sal = np.arange(SIZE * SIZE, dtype=float).reshape(SIZE, SIZE)
    stack = bokeh_images(img, sal, np.array([0.25, 1.0]), "blur", None, 0, 4.0)
    blurred = pil_blur(img, 4.0)
    np.testing.assert_array_equal(stack[0], blurred)
    np.testing.assert_array_equal(stack[1][SIZE * 3 // 4:], img[SIZE * 3 // 4:])  # the top 25% of the map
    np.testing.assert_array_equal(stack[1][:SIZE * 3 // 4], blurred[:SIZE * 3 // 4])
    np.testing.assert_array_equal(stack[2], img)


@pytest.mark.parametrize("thresholds", [[0.0, 0.5], [0.5, 1.5], [0.5, 0.2], [-0.1], []])
def test_thresholds_outside_unit_interval_or_unsorted_raise(setup, thresholds):
    model, images, maps, _ = setup
    with pytest.raises(ValueError, match="thresholds"):
        compute("sic_aic", model, images.astype(np.float32), maps, thresholds=thresholds)


def test_bad_pic_options_raise(setup):
    model, images, maps, _ = setup
    x = images.astype(np.float32)
    with pytest.raises(ValueError, match="information"):
        compute("sic_aic", model, x, maps, information="png")
    with pytest.raises(ValueError, match="random_mask"):
        compute("sic_aic", model, x, maps, random_mask=np.ones((5, 5), bool))
    with pytest.raises(ValueError, match="num_data_points"):
        compute("sic_aic", model, x, maps, num_data_points=0)
