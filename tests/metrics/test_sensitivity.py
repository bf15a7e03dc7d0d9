"""Max- and avg-sensitivity (Yeh et al. 2019) against a direct implementation; the Explanation interface."""
import numpy as np
import pytest
import tensorflow as tf

import tfxattr
from tfxattr.metrics import METRICS, compute


@pytest.fixture(scope="module")
def explained(tiny_model, tiny_images):
    return tfxattr.explain(tiny_model, tiny_images, "gradient", progress=False)


def direct_sensitivity(model, images, targets, reference, method, samples, radius, seed, relative, **options):
    """Yeh et al. Def. 3.1 by Monte Carlo, one perturbed image and one explain call at a time."""
    out_max, out_mean = [], []
    for i, image in enumerate(images):
        changes = []
        for s in range(samples):
            u = np.random.default_rng([seed, i, s]).uniform(-radius * 255, radius * 255, image.shape)
            y = np.clip(image + u, 0, 255).astype(np.float32)
            again = tfxattr.explain(model, y[None], method, targets=[targets[i]], progress=False, **options).attribution
            change = np.linalg.norm((again[0] - reference[i]).ravel().astype(np.float64))
            changes.append(change / np.linalg.norm(reference[i].ravel().astype(np.float64)) if relative else change)
        out_max.append(max(changes))
        out_mean.append(np.mean(changes))
    return np.array(out_max), np.array(out_mean)


@pytest.mark.parametrize("relative", [True, False])
def test_sensitivity_equals_the_direct_implementation(tiny_model, tiny_images, explained, relative):
    got_max = compute("max_sensitivity", tiny_model, None, explained, samples=4, radius=0.1, seed=3,
                      relative=relative, batch_size=5)
    got_avg = compute("avg_sensitivity", tiny_model, None, explained, samples=4, radius=0.1, seed=3,
                      relative=relative)
    want_max, want_avg = direct_sensitivity(tiny_model, tiny_images, explained.targets, explained.attribution,
                                            "gradient", 4, 0.1, 3, relative)
    np.testing.assert_allclose(got_max.scores["max_sensitivity"], want_max, rtol=1e-4)
    np.testing.assert_allclose(got_avg.scores["avg_sensitivity"], want_avg, rtol=1e-4)
    assert np.all(want_max >= want_avg) and np.all(want_avg > 0)
    assert not got_max.higher_is_better["max_sensitivity"] and not got_avg.higher_is_better["avg_sensitivity"]


def test_the_method_and_its_options_are_re_run(tiny_model, tiny_images):
    exp = tfxattr.explain(tiny_model, tiny_images[:2], "ig+idgi", steps=6, baseline="white", progress=False)
    got = compute("avg_sensitivity", tiny_model, None, exp, samples=2, radius=0.05, seed=1)
    want = direct_sensitivity(tiny_model, tiny_images[:2], exp.targets, exp.attribution, "ig+idgi", 2, 0.05, 1, True,
                              steps=6, baseline="white")[1]
    np.testing.assert_allclose(got.scores["avg_sensitivity"], want, rtol=1e-4)


def test_a_linear_models_gradient_does_not_move():
    """The gradient of a linear model is the same everywhere: sensitivity 0 (Yeh et al.'s lower bound)."""
    w = tf.constant(np.random.default_rng(0).normal(size=(8, 8, 3)).astype(np.float32))
    model = tfxattr.as_model(lambda x: tf.stack([tf.reduce_sum(x * w, [1, 2, 3]), tf.zeros(len(x))], -1),
                             input_shape=(8, 8, 3), num_classes=2)
    x = np.random.default_rng(1).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    exp = tfxattr.explain(model, x, "gradient", targets=0, progress=False)
    res = compute("max_sensitivity", model, None, exp, samples=3)
    np.testing.assert_allclose(res.scores["max_sensitivity"], 0.0, atol=1e-6)


def test_re_explanations_are_batched(tiny_model, tiny_images, explained, monkeypatch):
    from tfxattr.models import ModelAdapter

    sizes, real = [], ModelAdapter.values_and_gradients

    def counting(self, x, targets, batch_size=None):
        sizes.append(len(x))
        return real(self, x, targets, batch_size)
    monkeypatch.setattr(ModelAdapter, "values_and_gradients", counting)
    compute("max_sensitivity", tiny_model, None, explained, samples=5, batch_size=4)
    assert sizes == [4, 4, 4, 3]  # 3 images x 5 samples re-explained in chunks of 4 rows


def test_constant_attributions_are_skipped(tiny_model, tiny_images, explained):
    exp = tfxattr.Explanation(attribution=np.concatenate([explained.attribution[:2], np.zeros((1, 16, 16, 3))]),
                              targets=explained.targets, method="gradient", images=tiny_images)
    res = compute("max_sensitivity", tiny_model, None, exp, samples=2)
    assert res.skipped["max_sensitivity"] == {2: "constant map"} and np.isnan(res.scores["max_sensitivity"][2])
    assert np.all(np.isfinite(res.scores["max_sensitivity"][:2]))


def test_sensitivity_needs_the_explanation_and_checks_its_inputs(tiny_model, tiny_images, explained):
    assert METRICS["max_sensitivity"].consumes == METRICS["avg_sensitivity"].consumes == "explanation"
    with pytest.raises(ValueError, match="needs the Explanation itself as maps"):
        compute("max_sensitivity", tiny_model, tiny_images, explained.map)
    with pytest.raises(ValueError, match="differ from the classes the Explanation explains"):
        compute("max_sensitivity", tiny_model, None, explained, targets=(explained.targets + 1) % 5)
    with pytest.raises(ValueError, match="does not match the images"):
        compute("max_sensitivity", tiny_model, tiny_images[:2], explained)
    for options, message in [({"radius": 0.0}, "radius must be a positive number"),
                             ({"samples": 0}, "samples must be a positive integer"),
                             ({"relative": "yes"}, "relative must be True or False"),
                             ({"seed": -1}, "seed must be a non-negative integer"),
                             ({"sample": 3}, "did you mean 'samples'")]:
        with pytest.raises(ValueError, match=message):
            compute("avg_sensitivity", tiny_model, None, explained, **options)
    unknown = tfxattr.Explanation(attribution=explained.attribution, targets=explained.targets, method="nope",
                                  images=tiny_images)
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        compute("avg_sensitivity", tiny_model, None, unknown)
