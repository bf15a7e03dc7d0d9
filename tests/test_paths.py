"""Paths and aggregators in isolation."""
import numpy as np
import pytest
import tensorflow as tf

import tfxattr
from tfxattr.aggregate import IDGI, Accumulator, MaxGradient, Riemann, get_aggregator
from tfxattr.paths import RULES, BlurPath, riemann_plan


@pytest.mark.parametrize("rule", RULES)
def test_riemann_weights_sum_to_one(rule):
    plan = riemann_plan(7, rule)
    assert plan.seg_weight.sum() == pytest.approx(1.0)
    assert plan.params.min() >= 0 and plan.params.max() <= 1


def test_rules_are_exact_for_a_linear_model():
    import keras

    inp = keras.Input((4, 4, 1))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(inp)))
    x = np.random.default_rng(0).uniform(0, 255, (1, 4, 4, 1)).astype(np.float32)
    w = model.layers[-1].get_weights()[0][:, 1].reshape(4, 4, 1)
    for rule in ("left", "right", "midpoint", "trapezoid"):
        got = tfxattr.explain(model, x, "ig", target=1, steps=5, rule=rule).attribution[0]
        np.testing.assert_allclose(got, w * x[0], rtol=1e-4, atol=1e-4)


def test_blur_path_runs_from_blurred_image_to_input():
    path = BlurPath(steps=4, max_sigma=8.0)
    assert path.sigmas[0] == 0 and path.sigmas[-1] == 8.0
    np.testing.assert_array_equal(path.plan.seg_start, [1, 2, 3, 4])
    np.testing.assert_array_equal(path.plan.seg_end, [0, 1, 2, 3])


def test_idgi_contribution_is_a_distribution_and_zero_safe():
    g = tf.constant(np.random.default_rng(0).normal(size=(2, 3, 3, 1)), tf.float32)
    u = IDGI().contribution(tf.concat([g, tf.zeros((1, 3, 3, 1))], 0)).numpy()
    np.testing.assert_allclose(u[:2].sum((1, 2, 3)), 1.0, rtol=1e-12)
    assert np.all(u[2] == 0) and np.all(np.isfinite(u))


def test_accumulator_waits_for_end_values():
    acc = Accumulator(IDGI(), 1, (2,), n_points=3, seg_start=[0, 1], seg_end=[1, 2])
    acc.add_values([0], [0], [1.0])
    acc.add_segments([0], [0], tf.constant([[1.0, 1.0]]))
    acc.add_segments([0], [1], tf.constant([[0.0, 2.0]]))
    with pytest.raises(RuntimeError):
        acc.finish()
    acc.add_values([0, 0], [1, 2], [3.0, 7.0])
    np.testing.assert_allclose(acc.finish(), [[1.0, 5.0]])


def test_max_and_riemann_aggregators():
    acc = Accumulator(MaxGradient(), 2, (2,), 0)
    acc.add_segments([0, 0, 1], [0, 1, 0], tf.constant([[1.0, -3.0], [0.5, -1.0], [2.0, 2.0]]))
    np.testing.assert_allclose(acc.finish(), [[1.0, -1.0], [2.0, 2.0]])
    acc = Accumulator(Riemann(), 1, (2,), 0)
    acc.add_segments([0, 0], [0, 1], tf.constant([[1.0, 2.0], [1.0, 2.0]]), tf.constant([[0.5, 0.5], [0.5, 0.5]]))
    np.testing.assert_allclose(acc.finish(), [[1.0, 2.0]])
    with pytest.raises(ValueError, match="aggregator"):
        get_aggregator("mean")


def test_user_path_matches_ig_and_rejects_non_images(tiny_model, tiny_images):
    alphas = np.linspace(0, 1, 9, dtype=np.float32)[:, None, None, None]
    for i, img in enumerate(tiny_images):
        path = alphas * img[None]
        ours = tfxattr.explain(tiny_model, img, "path", target=1, path=path).attribution
        ig = tfxattr.explain(tiny_model, img, "ig", target=1, steps=8, rule="left").attribution
        np.testing.assert_allclose(ours, ig, rtol=1e-4, atol=1e-6)
        idgi = tfxattr.explain(tiny_model, img, "path+idgi", target=1, path=path).attribution
        np.testing.assert_allclose(idgi, tfxattr.explain(tiny_model, img, "ig+idgi", target=1, steps=8).attribution,
                                   rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="path must be an array of images"):
        tfxattr.explain(tiny_model, tiny_images[0], "path", path=np.zeros((5, 8, 8, 3)))
    with pytest.raises(ValueError, match="needs the option path"):
        tfxattr.explain(tiny_model, tiny_images[0], "path")


def test_ig_rejects_trapezoid_with_idgi(tiny_model, tiny_images):
    with pytest.raises(ValueError, match="trapezoid"):
        tfxattr.explain(tiny_model, tiny_images, "ig+idgi", rule="trapezoid")
    with pytest.raises(ValueError, match="steps"):
        tfxattr.explain(tiny_model, tiny_images, "ig", steps=0)
