"""SIC/AIC equal PAIR's compute_pic_metric; information levels; batching; skips."""
import numpy as np
import pytest
import saliency.metrics.pic as pair_pic
import tensorflow as tf

import tfxattr
from tfxattr.metrics import IDGI_THRESHOLDS, METRICS, PAIR_THRESHOLDS, PIC_AGGREGATION, compute
from tfxattr.metrics.bokeh import _one_blas_thread, bokeh_images, interpolate_unknown, pil_blur
from tfxattr.metrics.information import msssim_settings, msssim_to
from tfxattr.metrics.result import binned_curve

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


@pytest.mark.parametrize("size", [SIZE, 61])
def test_interpolated_image_equals_pair_create_blurred_image(size):
    img = textured_images(1, size=size)[0]
    rng = np.random.default_rng(3)
    # sparse to dense known pixels, a uniform image, and a map's revealed blocks (cocircular runs of pixels)
    masks = [rng.random((size, size)) < fraction for fraction in (0.003, 0.01, 0.3, 0.9, 0.99)]
    masks.append(np.kron(rng.random((size // 4 + 1, size // 4 + 1)) < 0.5, np.ones((4, 4), bool))[:size, :size])
    for known, image in zip(masks + masks[:1], [img] * len(masks) + [np.full_like(img, 77)]):
        with _one_blas_thread():
            ref = pair_pic.create_blurred_image(image, known)
        np.testing.assert_array_equal(interpolate_unknown(image, known), ref)
    np.testing.assert_array_equal(interpolate_unknown(img, np.ones((size, size), bool)), img)


def test_an_image_equal_to_the_original_is_not_encoded_again(monkeypatch):
    from tfxattr.metrics import information

    img = textured_images(1)[0]
    sal = np.random.default_rng(0).random((SIZE, SIZE))
    stack = bokeh_images(img, sal, np.array([0.5, 1.0]), "blur", None, 0, 4.0)
    encoded = []
    real = information.webp_size
    monkeypatch.setattr(information, "webp_size", lambda x: encoded.append(x) or real(x))
    levels = information.information_levels(img[None], [stack], "webp")[0]
    assert len(encoded) == 3  # the original, the baseline, the 50% image; the 100% image is the original
    assert levels[3] == levels[0] == real(img) and levels[1] == real(stack[0]) and levels[2] == real(stack[1])


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
    # the library default is the papers' (XRAI, IDGI Sec. 4.4): SIC median, AIC mean (was: median for both)
    agg = pair_pic.aggregate_individual_pic_results(refs, method=PIC_AGGREGATION[metric])
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
    res = METRICS[name](model, images.astype(np.float32), maps, targets=0, batch_size=32, blur_sigma=3.0)
    assert set(res.scores) == {"sic", "aic"}
    for key in ("sic", "aic"):
        kept = res.kept(key)
        assert len(kept) + len(res.skipped[key]) == 3
        assert np.all((res.scores[key][kept] >= 0) & (res.scores[key][kept] <= 1))
    assert res.curves["sic"].x.shape == ((101,) if "idgi" in name else (1001,))


def test_blur_base_reveals_exact_pixels_and_threshold_one_is_the_original():
    img = textured_images(1)[0]
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
    with pytest.raises(ValueError, match="aggregation"):
        compute("sic_aic", model, x, maps, aggregation="avg")
    with pytest.raises(ValueError, match="unknown score.*'aicc'.*did you mean"):
        compute("sic_aic", model, x, maps, aggregation={"aicc": "mean"})
    with pytest.raises(ValueError, match="estimator"):
        compute("sic_aic", model, x, maps, estimator="bins")
    with pytest.raises(ValueError, match="bins"):
        compute("sic_aic", model, x, maps, bins=0)


def test_default_aggregation_is_median_for_sic_and_mean_for_aic(setup):
    """XRAI Sec. 4 / IDGI Sec. 4.4: SIC median, AIC mean - by default, in the result, its dict and the report."""
    from tfxattr.evaluation.summary import StoreView, summarize

    model, images, maps, seed_mask = setup
    res = compute("sic_aic", model, images.astype(np.float32), maps, targets=0, random_mask=seed_mask,
                  thresholds=THRESHOLDS, min_pred_value=0.5)
    assert PIC_AGGREGATION == {"sic": "median", "aic": "mean"}
    assert (res.aggregation_of("sic"), res.aggregation_of("aic")) == ("median", "mean")
    agg = res.aggregate()
    for name, reduce in (("sic", np.median), ("aic", np.mean)):
        c = res.curves[name]
        assert agg[name] == pytest.approx(np.trapezoid(reduce(c.y[res.kept(name)], axis=0), c.x), abs=1e-12)
    # the AIC curves are 0/1 steps: their pointwise median and mean differ, so the default is visible
    aic = res.curves["aic"]
    mean_area = np.trapezoid(aic.y.mean(0), aic.x)
    median_area = np.trapezoid(np.median(aic.y, 0), aic.x)
    assert abs(mean_area - median_area) > 1e-3 and agg["aic"] == pytest.approx(mean_area, abs=1e-12)
    assert res.aggregate("median")["aic"] == pytest.approx(median_area, abs=1e-12)  # an explicit override wins
    assert res.aggregate({"aic": "median"}) == pytest.approx({"sic": agg["sic"], "aic": median_area})
    assert res.to_dict()["score_aggregation"] == {"sic": "median", "aic": "mean"}
    assert "mean;" in res.summary().splitlines()[2]  # the aic line names its aggregation
    # the report reads the per-score default from a store's metric record (the options hold it) ...
    record = {"aggregation": res.aggregation, "options": res.to_dict()["options"],
              "higher_is_better": {"sic": True, "aic": True},
              "curves": {k: {"x": c.x.tolist(), "scale": 1.0} for k, c in res.curves.items()}}
    results = [{"model": "m", "method": "x", "scores": {"sic_aic": {k: float(v[i]) for k, v in res.scores.items()}},
                "curves": {"sic_aic": {k: c.y[i].tolist() for k, c in res.curves.items()}}} for i in range(3)]
    rows = {r.score: r for r in summarize(StoreView({}, {}, {"sic_aic": record}, results))}
    assert (rows["sic"].aggregation, rows["aic"].aggregation) == ("median", "mean")
    assert rows["aic"].aggregate == pytest.approx(mean_area, abs=1e-9)
    # ... and a store written before (one "median" for the metric, no per-score entry) keeps its meaning
    old = dict(record, options={})
    rows = {r.score: r for r in summarize(StoreView({}, {}, {"sic_aic": old}, results))}
    assert rows["aic"].aggregation == "median" and rows["aic"].aggregate == pytest.approx(median_area, abs=1e-9)


def test_binned_curve_equals_a_loop_over_bins():
    rng = np.random.default_rng(4)
    x, y = rng.random(500), rng.random(500)
    x[:3] = [0.0, 1.0, 0.999]
    for how, reduce in (("mean", np.mean), ("median", np.median)):
        bx, by = binned_curve(x, y, 100, how)
        members = [[v for u, v in zip(x, y) if b / 100 <= u < (b + 1) / 100 or (b == 99 and u == 1.0)]
                   for b in range(100)]
        want = [(b, reduce(m)) for b, m in enumerate(members) if m]
        np.testing.assert_allclose(bx, [(b + 0.5) / 100 for b, _ in want])
        np.testing.assert_allclose(by, [v for _, v in want])


def paper_binned_pic(model, images, maps, target, thresholds, radius, bins=100, min_pred=0.5):
    """IDGI Sec. 4.4 written out: blurred base, bokeh images revealing the top k% pixels, WebP sizes
    normalised between base and original (PAIR's "Normalized Entropy"), bin every bokeh image by it, then per
    bin the mean accuracy (AIC) and the median of bokeh/original probability (SIC), running max per image."""
    import io

    from PIL import Image, ImageFilter

    def size(a):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="webp", lossless=True, quality=100)
        return buf.tell()

    pooled = {"sic": [], "aic": []}
    kept = {"sic": [], "aic": []}
    for i, img in enumerate(images):
        blurred = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius=radius)))
        bokeh = [np.where((maps[i] >= np.quantile(maps[i], 1 - k))[..., None], img, blurred) for k in thresholds]
        p = model.probabilities(np.stack([img, blurred] + bokeh).astype(np.float32))
        hit = (np.argmax(p, -1) == target).astype(float)
        info = [size(a) for a in [img, blurred] + bokeh]
        x = [min(max((s - info[1]) / (info[0] - info[1]), 0.0), 1.0) for s in info[2:]]
        for name, v in (("sic", p[:, target]), ("aic", hit)):
            if v[0] < min_pred or info[1] >= info[0] or v[1] >= v[0]:
                continue  # PAIR's reasons to leave an image out
            kept[name].append(i)
            best = -np.inf
            for xj, vj in zip(x, v[2:]):
                best = max(best, vj / v[0] if name == "sic" else vj)
                pooled[name].append((xj, best))
    out = {}
    for name, how in (("sic", np.median), ("aic", np.mean)):
        by_bin = {}
        for xj, vj in pooled[name]:
            by_bin.setdefault(min(int(np.floor(xj * bins)), bins - 1), []).append(vj)
        centres = [(b + 0.5) / bins for b in sorted(by_bin)]
        values = [how(by_bin[b]) for b in sorted(by_bin)]
        out[name] = sum((centres[j + 1] - centres[j]) * (values[j] + values[j + 1]) / 2 for j in range(len(values) - 1))
    return out, kept


def test_idgi_presets_aggregate_with_the_papers_binned_estimator(setup):
    model, images, maps, _ = setup
    sigma = 3.0  # 20 px images: the paper's PIL radius (= sigma) 20 would blur them flat
    res = METRICS["sic_aic_idgi"](model, images.astype(np.float32), maps, targets=0, blur_sigma=sigma)
    want, kept = paper_binned_pic(model, images, maps, 0, IDGI_THRESHOLDS, sigma)
    for name in ("sic", "aic"):
        assert res.curves[name].bins == 100 and res.options["estimator"] == "binned"
        assert res.kept(name).tolist() == kept[name] and len(kept[name]) >= 2
        assert res.aggregate()[name] == pytest.approx(want[name], abs=1e-6)
        x, _ = res.aggregate_curves()[name]
        assert len(x) > 1 and np.all(np.diff(x) > 0)
    # the same images under PAIR's estimator give another number: the presets really changed estimator
    pair = METRICS["sic_aic_idgi"](model, images.astype(np.float32), maps, targets=0, blur_sigma=sigma,
                                   estimator="interpolate")
    assert pair.aggregate()["sic"] != pytest.approx(res.aggregate()["sic"], abs=1e-6)
    assert METRICS["sic_aic_idgi_msssim"].defaults["estimator"] == "binned"
    assert METRICS["sic_aic_pair"].defaults["estimator"] == METRICS["sic_aic"].defaults["estimator"] == "interpolate"
