"""GGIG (Rahman, Lewis, Plis; Algorithm 1) against a port of the authors' loop: the ascent acts on the
tensor the network sees, so normalisation inside the model or in ``preprocess`` gives the same map."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxattr

SIZE, CLASSES = 12, 4
SCALE = 1 / 255.0


@pytest.fixture(scope="module")
def nets():
    """``network`` reads normalised images; ``whole`` is the same network behind a Rescaling layer."""
    keras.utils.set_random_seed(3)
    inp = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Conv2D(6, 3, padding="same", activation="tanh")(inp)
    h = keras.layers.GlobalAveragePooling2D()(h)
    network = keras.Model(inp, keras.layers.Dense(CLASSES)(h), name="network")
    whole = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(SCALE), network], name="whole")
    images = np.random.default_rng(1).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)
    return network, whole, images


def reference_ggig(network, z, targets, points, steps, lr):
    """The authors' loop on normalised inputs ``z``: from each point a/(n-1) z on the line from the zero
    reference, ``steps`` ascent steps z += lr * g with g recorded before each, signed per-feature max."""
    best = np.full(z.shape, -np.inf)
    for alpha in np.linspace(0, 1, points):
        x = tf.constant(alpha * z)
        for _ in range(steps):
            with tf.GradientTape() as tape:
                tape.watch(x)
                f = tf.gather(network(x), targets, axis=1, batch_dims=1)
            g = tape.gradient(f, x)
            best = np.maximum(best, g.numpy())
            x = x + lr * g
    return best


def test_matches_the_authors_loop_in_network_space(nets):
    network, whole, images = nets
    targets = np.array([0, 1, 3])
    ours = tfxattr.explain(whole, images, "ggig", targets=targets, steps=3, ascent_steps=4, lr=0.5).attribution
    ref = reference_ggig(network, images * SCALE, targets, 3, 4, 0.5)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6)


def test_normalisation_inside_the_model_or_in_preprocess_gives_the_same_map(nets):
    network, whole, images = nets
    opts = dict(targets=2, steps=3, ascent_steps=4, lr=0.5)
    inside = tfxattr.explain(whole, images, "ggig", **opts).attribution
    outside = tfxattr.explain(network, images, "ggig", preprocess=lambda x: x * SCALE, **opts).attribution
    np.testing.assert_allclose(inside, outside, rtol=1e-5, atol=1e-7)
    # the ascent really moves the points: another step size gives another map
    still = tfxattr.explain(whole, images, "ggig", **{**opts, "lr": 0.0}).attribution
    assert not np.allclose(inside, still, rtol=1e-3)


def test_pixel_baselines_go_through_the_same_preprocessing(nets):
    network, whole, images = nets
    black = tfxattr.explain(whole, images, "ggig", targets=1, steps=2, ascent_steps=2, baseline="black").attribution
    zero = tfxattr.explain(whole, images, "ggig", targets=1, steps=2, ascent_steps=2).attribution
    np.testing.assert_allclose(black, zero, rtol=1e-5, atol=1e-7)  # black pixels are 0 after Rescaling(1/255)
    white = tfxattr.explain(whole, images, "ggig", targets=1, steps=2, ascent_steps=2, baseline="white").attribution
    assert not np.allclose(white, zero)
