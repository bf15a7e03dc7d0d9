"""Insertion/deletion, POS/NEG, ADP/PIC on hand-checkable models; the common API and its errors."""
import json

import numpy as np
import pytest
import tensorflow as tf

import tfxattr
from tfxattr.metrics import METRICS, MetricResult, compute, get_metric

SIZE = 20  # 400 pixels: 5% = 20 pixels, the region below = 100 pixels = 25%
# every registered metric that scores maps of plain images: a new one gets the contract tests for free
MAP_METRICS = [n for n, s in METRICS.items() if s.consumes == "maps"]


def region_model():
    """p(class 0) = mean brightness of the red channel in the top-left 10x10 region; p(class 1) = 1 - that."""
    def fn(x):
        m = tf.reduce_mean(x[:, :10, :10, 0], [1, 2]) / 255.0
        return tf.stack([m, 1.0 - m], -1)
    return tfxattr.as_model(fn, input_shape=(SIZE, SIZE, 3), num_classes=2, output="probability")


def region_map(value=1.0):
    m = np.zeros((SIZE, SIZE))
    m[:10, :10] = value
    return m


@pytest.fixture(scope="module")
def model():
    return region_model()


@pytest.fixture(scope="module")
def white():
    return np.full((2, SIZE, SIZE, 3), 255.0, np.float32)


def test_insertion_and_deletion_of_a_perfect_map_give_the_known_curves(model, white):
    maps = np.stack([region_map(), region_map()])
    ins = compute("insertion", model, white, maps, targets=0)
    x = np.linspace(0, 1, 21)
    expected = np.minimum(x / 0.25, 1.0)  # the region is revealed first: 20 of its 100 pixels per step
    np.testing.assert_allclose(ins.curves["insertion"].x, x, atol=1e-12)
    np.testing.assert_allclose(ins.curves["insertion"].y, np.stack([expected] * 2), atol=1e-6)
    np.testing.assert_allclose(ins.scores["insertion"], [0.875, 0.875], atol=1e-6)
    np.testing.assert_allclose(ins.scores["insertion_ratio"], [0.875, 0.875], atol=1e-6)
    dele = compute("deletion", model, white, maps, targets=0)
    np.testing.assert_allclose(dele.curves["deletion"].y[0], 1.0 - expected, atol=1e-6)
    np.testing.assert_allclose(dele.scores["deletion"], [0.125, 0.125], atol=1e-6)
    assert ins.higher_is_better["insertion"] and not dele.higher_is_better["deletion"]


def test_probability_ratio_divides_by_the_original_probability(model):
    img = np.full((1, SIZE, SIZE, 3), 255.0 * 0.8, np.float32)  # p(class 0) = 0.8 on the original
    res = compute("insertion", model, img, region_map()[None], targets=0, step=0.25)
    np.testing.assert_allclose(res.curves["insertion"].y[0], [0, 0.8, 0.8, 0.8, 0.8], atol=1e-6)
    np.testing.assert_allclose(res.curves["insertion_ratio"].y[0], [0, 1, 1, 1, 1], atol=1e-6)
    assert res.scores["insertion_ratio"][0] == pytest.approx(0.875, abs=1e-6)


def test_perfect_map_beats_random_map_and_aucs_lie_in_the_unit_interval(model):
    rng = np.random.default_rng(0)
    images = rng.uniform(100, 255, (4, SIZE, SIZE, 3)).astype(np.float32)
    perfect = np.stack([region_map() + 0.01 * rng.random((SIZE, SIZE)) for _ in range(4)])
    random = rng.random((4, SIZE, SIZE))
    for name, better in (("insertion", np.greater), ("deletion", np.less)):
        good = compute(name, model, images, perfect, targets=0, baseline="blur", blur_sigma=2.0)
        bad = compute(name, model, images, random, targets=0, baseline="blur", blur_sigma=2.0)
        assert np.all(better(good.scores[name], bad.scores[name]))
        for res in (good, bad):
            assert np.all((res.scores[name] >= 0) & (res.scores[name] <= 1))
            assert np.all(np.isfinite(res.scores[f"{name}_ratio"]))


def test_perfect_map_beats_random_map_on_the_demo_model():
    from tfxattr import demo

    data = demo.make_demo_data(6, seed=11)
    images = np.asarray(data["images"], np.float32)
    masks = np.asarray(data["masks"], bool)
    rng = np.random.default_rng(0)
    perfect = masks + 0.01 * rng.random(masks.shape)
    random = rng.random(masks.shape)
    model = demo.load_demo_model()
    good = compute("insertion", model, images, perfect, targets=data["labels"], step=0.1)
    bad = compute("insertion", model, images, random, targets=data["labels"], step=0.1)
    assert good.aggregate()["insertion"] > bad.aggregate()["insertion"]


def test_pos_neg_of_a_perfect_map_hand_computed(model, white):
    res = compute("pos_neg", model, white, np.stack([region_map()] * 2), targets=0)
    # POS removes the region first: class 0 holds at 0 and 0.1 (m = 0.6), is lost from 0.2 (m = 0.2)
    np.testing.assert_array_equal(res.curves["pos"].y[0], [1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    # NEG removes the 300 outside pixels first: class 0 holds up to 0.8 (m = 0.8), is lost at 0.9 (m = 0.4)
    np.testing.assert_array_equal(res.curves["neg"].y[0], [1, 1, 1, 1, 1, 1, 1, 1, 1, 0])
    np.testing.assert_allclose(res.scores["pos"], [15.0, 15.0])
    np.testing.assert_allclose(res.scores["neg"], [85.0, 85.0])
    assert res.aggregate() == pytest.approx({"pos": 15.0, "neg": 85.0})
    prob = compute("pos_neg", model, white[:1], region_map()[None], targets=0, measure="probability")
    np.testing.assert_allclose(prob.curves["pos"].y[0][:3], [1.0, 0.6, 0.2], atol=1e-6)


def test_pos_neg_labels_decide_the_hits(model, white):
    res = compute("pos_neg", model, white, np.stack([region_map()] * 2), targets=0, labels=[1, 1])
    assert np.all(res.scores["neg"] < 85.0)  # the label is never the top-1 until the region goes


def test_adp_and_pic_hand_computed(model):
    img = np.full((1, SIZE, SIZE, 3), 255.0 * 0.8, np.float32)  # Y0 = 0.8, Y1 = 0.2
    keep = compute("adp_pic", model, img, region_map()[None], targets=0)
    assert keep.scores["adp"][0] == pytest.approx(0.0, abs=1e-4) and keep.scores["pic"][0] == 0.0
    half = region_map()
    half[:5, :10] = 0.5  # min-max scaled: half of the region at 0.5 -> the region's mean drops to 0.75 * 0.8
    drop = compute("adp_pic", model, np.concatenate([img, img]), np.stack([half, half]), targets=[0, 1])
    assert drop.scores["adp"][0] == pytest.approx(25.0, abs=1e-3)  # 100 * (0.8 - 0.6) / 0.8
    assert drop.scores["pic"][0] == 0.0
    assert drop.scores["adp"][1] == pytest.approx(0.0, abs=1e-4) and drop.scores["pic"][1] == 100.0
    const = compute("adp_pic", model, img, np.ones((1, SIZE, SIZE)), targets=0)
    # issue 9 item 6 names one reason for every metric (was "the map is constant" here)
    assert const.skipped["adp"] == {0: "constant map"} and np.isnan(const.scores["pic"][0])


def test_all_steps_of_several_images_share_model_calls(model, white, probability_calls):
    sizes = probability_calls
    compute("insertion", model, white, np.stack([region_map()] * 2), targets=0, batch_size=32)
    assert sizes == [2, 2 * 21]  # the originals, then 21 steps of both images together
    sizes.clear()
    compute("pos_neg", model, np.concatenate([white] * 4), np.stack([region_map()] * 8), batch_size=10)
    assert sizes == [8, 40, 40, 40, 40]  # 8 x 10 steps per order, 4 images per group (4 batches of 10)


def test_result_aggregates_summarises_and_serialises(model, white):
    res = compute("insertion", model, white, np.stack([region_map(), np.random.default_rng(0).random((SIZE, SIZE))]),
                  targets=0)
    mean = res.aggregate()
    assert mean["insertion"] == pytest.approx(res.scores["insertion"].mean())
    assert set(res.aggregate("median")) == {"insertion", "insertion_ratio"}
    assert "insertion" in res.summary() and "higher is better" in res.summary()
    data = json.loads(json.dumps(res.to_dict()))
    assert data["metric"] == "insertion" and len(data["scores"]["insertion"]) == 2
    assert isinstance(res, MetricResult) and res.skipped == {"insertion": {}, "insertion_ratio": {}}


def test_explanation_and_channel_maps_are_accepted(model, white):
    attribution = np.zeros((2, SIZE, SIZE, 3), np.float32)
    attribution[:, :10, :10, :] = -1.0  # sum of |a| over channels, like Explanation.map
    a = compute("insertion", model, white, attribution, targets=0)
    expl = tfxattr.Explanation(attribution=attribution, targets=np.array([0, 0]), method="x", images=white)
    b = compute("insertion", model, None, expl)
    np.testing.assert_allclose(a.scores["insertion"], [0.875, 0.875], atol=1e-6)
    np.testing.assert_allclose(b.scores["insertion"], a.scores["insertion"])


@pytest.mark.parametrize("name", MAP_METRICS)
def test_every_metric_takes_the_same_arguments(model, white, name):
    masks = np.zeros((2, SIZE, SIZE), bool)
    res = METRICS[name](model, white, np.stack([region_map()] * 2), targets=None, masks=masks, batch_size=8)
    assert isinstance(res, MetricResult) and res.metric == name and res.num_images == 2
    assert set(res.skipped) == set(res.scores) == set(res.higher_is_better)
    for key, values in res.scores.items():
        assert values.shape == (2,)
        assert all(np.isnan(values[i]) for i in res.skipped[key])


@pytest.mark.parametrize("name", MAP_METRICS)
def test_every_curve_has_a_declared_x_axis(model, white, name):
    masks = np.zeros((2, SIZE, SIZE), bool)
    res = METRICS[name](model, white, np.stack([region_map()] * 2), targets=None, masks=masks, batch_size=8)
    assert set(res.curves) == set(METRICS[name].curve_axes)
    assert all(label for label in METRICS[name].curve_axes.values())


def test_bad_inputs_raise_clear_errors(model, white):
    maps = np.stack([region_map()] * 2)
    with pytest.raises(ValueError, match="maps must have shape"):
        compute("insertion", model, white, maps[:, :10])
    with pytest.raises(ValueError, match="maps must have shape"):
        compute("insertion", model, white, maps[:1])
    with pytest.raises(ValueError, match="target"):
        compute("insertion", model, white, maps, targets=[0, 1, 0])
    with pytest.raises(ValueError, match="targets out of range"):
        compute("insertion", model, white, maps, targets=5)
    with pytest.raises(ValueError, match="non-finite"):
        compute("insertion", model, white, np.full_like(maps, np.nan))
    with pytest.raises(ValueError, match="masks must have shape"):
        compute("insertion", model, white, maps, masks=np.zeros((3, SIZE, SIZE), bool))
    for step in (0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"step must lie in \(0, 1\]"):
            compute("insertion", model, white, maps, step=step)
    with pytest.raises(ValueError, match="fractions"):
        compute("pos_neg", model, white, maps, fractions=[0.5, 0.2])
    with pytest.raises(ValueError, match="unknown metric 'insert' \\(did you mean 'insertion'\\?\\); available: "):
        get_metric("insert")
    with pytest.raises(ValueError, match="unknown option.*'steps'.*valid options"):
        compute("insertion", model, white, maps, steps=10)
    with pytest.raises(ValueError, match="baseline must be"):
        compute("deletion", model, white, maps, baseline="grey")
    with pytest.raises(ValueError, match="measure"):
        compute("pos_neg", model, white, maps, measure="logit")
    with pytest.raises(ValueError, match="batch_size"):
        compute("insertion", model, white, maps, batch_size=0)


# -- the reference perturbation tests, ported (read, not copied) ----------------------------------------------
def reference_pos_neg(probabilities, images, vis, labels, neg, measure="accuracy"):
    """LTX-Code/LTX cnn_baselines/evaluation/perturbation_eval_from_hdf5_all_comb_by_method.py (after
    hila-chefer/Transformer-Explainability baselines/ViT/pertubation_eval_from_hdf5.py): blacken the top-k of
    the (negated for NEG) flattened map in all channels, k = int(H*W*step) for steps 0.1..0.9; prepend the
    unperturbed value; 100 * sklearn-style trapezoid AUC over arange(0, 1, 0.1) of the mean over images."""
    n, h, w, c = images.shape
    steps = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]

    def value(batch):
        p = probabilities(batch)
        return (np.argmax(p, 1) == labels).astype(float) if measure == "accuracy" else p[np.arange(n), labels]
    v = (-vis if neg else vis).reshape(n, -1)
    curve = [value(images).mean()]
    for step in steps:
        data = images.reshape(n, h * w, c).copy()
        top = np.argsort(-v, axis=1)[:, :int(h * w * step)]
        for i in range(n):
            data[i, top[i], :] = 0.0
        curve.append(value(data.reshape(images.shape)).mean())
    x = np.arange(0, 1, 0.1)
    return 100 * sum((x[j + 1] - x[j]) * (curve[j] + curve[j + 1]) / 2 for j in range(len(x) - 1)), curve


def reference_adp_pic(probabilities, images, vis, labels):
    """LTX-Code/LTX cnn_baselines/evaluation/adp_pic_eval_from_hdf5.py (Grad-CAM++ Eqs. 21-22): the image times
    the [0, 1] map; Y, O = softmax of the label; ADP = 100 mean(max(Y - O, 0) / Y), PIC = 100 mean(Y < O)."""
    idx = np.arange(len(images))
    y = probabilities(images)[idx, labels]
    o = probabilities(images * vis[..., None])[idx, labels]
    return 100 * np.mean(np.maximum(y - o, 0) / y), 100 * np.mean(y < o)


@pytest.fixture(scope="module")
def demo_setup():
    from tfxattr import demo

    data = demo.make_demo_data(8, seed=21)
    images = np.asarray(data["images"], np.float32)
    rng = np.random.default_rng(2)
    vis = np.asarray(data["masks"], float) + rng.random(data["masks"].shape)  # no ties: topk order is moot
    vis = (vis - vis.min((1, 2), keepdims=True)) / np.ptp(vis, axis=(1, 2), keepdims=True)  # in [0, 1] already
    adapter = tfxattr.as_model(demo.load_demo_model(), output="probability")
    return adapter, images, vis, np.asarray(data["labels"])


@pytest.mark.parametrize("measure", ["accuracy", "probability"])
def test_pos_neg_equals_the_reference_perturbation_test(demo_setup, measure):
    adapter, images, vis, labels = demo_setup
    # IIA's "Predicted" setting: maps explain the top-1 class, hits are checked against the ground truth
    res = compute("pos_neg", adapter, images, vis, targets=None, labels=labels, measure=measure)
    for name, neg in (("pos", False), ("neg", True)):
        auc, curve = reference_pos_neg(adapter.probabilities, images, vis, labels, neg, measure)
        np.testing.assert_allclose(np.nanmean(res.curves[name].y, 0), curve, atol=1e-6)
        assert res.aggregate()[name] == pytest.approx(auc, abs=1e-4)
        assert np.ptp(curve) > 0.1  # the removals change the predictions: the comparison is not vacuous


def test_adp_pic_equals_the_reference(demo_setup):
    adapter, images, vis, labels = demo_setup
    images = images.copy()
    images[::2] *= 0.6  # darker images: some masked images gain confidence, so PIC is not 0
    res = compute("adp_pic", adapter, images, vis, targets=None, labels=labels)
    adp, pic = reference_adp_pic(adapter.probabilities, images, vis, labels)
    assert res.aggregate()["adp"] == pytest.approx(adp, abs=1e-4)
    assert res.aggregate()["pic"] == pytest.approx(pic, abs=1e-9)
    assert METRICS["adp_pic"].uses_labels  # the runner passes the ground truth, as the reference uses it


# -- constant maps ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def textured():
    """The SIC/AIC test's edge model and textured images: every maps metric scores a normal map on them."""
    from tests.metrics.test_pic import edge_energy, edge_model, textured_images

    images = textured_images(3)
    blurred = np.stack([np.asarray(tfxattr.metrics.bokeh.pil_blur(i, 20.0)) for i in images])
    e_orig, e_base = edge_energy(tf.constant(images, tf.float32)).numpy(), edge_energy(
        tf.constant(blurred, tf.float32)).numpy()
    threshold = float((e_orig.min() + e_base.max()) / 2)
    return edge_model(threshold, gain=4.0 / (e_orig.min() - threshold)), images.astype(np.float32)


@pytest.mark.parametrize("name", MAP_METRICS)
def test_constant_and_all_zero_maps_are_skipped_by_every_maps_metric(textured, name):
    model, images = textured
    normal = np.random.default_rng(5).random(images.shape[:3])[0]
    maps = np.stack([normal, np.full_like(normal, 0.7), np.zeros_like(normal)])
    masks = np.zeros(images.shape[:3], bool)
    masks[:, 5:15, 5:15] = True
    res = METRICS[name](model, images, maps, targets=0, masks=masks, batch_size=16)
    for score, values in res.scores.items():
        assert res.skipped[score].get(1) == res.skipped[score].get(2) == "constant map", score
        assert np.isnan(values[1]) and np.isnan(values[2])
        assert 0 not in res.skipped[score] and np.isfinite(values[0]), (score, res.skipped[score])
        if score in res.curves:
            assert np.all(np.isnan(res.curves[score].y[1:])) and np.all(np.isfinite(res.curves[score].y[0]))
    assert all(np.isfinite(v) for v in res.aggregate().values())  # the normal map alone is aggregated
