"""FullGrad (Srinivas & Fleuret 2019): the full-gradient decomposition is complete on a ReLU network
(Eq. 2: f = <df/dx, x> + the bias-gradients of every layer, BatchNormalization's implicit bias and a
fused activation included); on a bias-free network the map is the post-processed input-gradient term."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxattr
from tfxattr.methods.fullgrad import full_gradients, normalise, resize
from tfxattr.models.layers import layer_chain

SIZE = 12
IMAGES = np.random.default_rng(2).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)
TARGETS = np.array([1, 0, 2], np.int32)


def relu_net(use_bias=True, seed=0):
    """Piecewise-linear: conv -> BN -> ReLU -> max-pool -> conv(relu fused) -> GAP -> dense."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Rescaling(1 / 255.0)(inp)
    h = keras.layers.Conv2D(6, 3, padding="same", use_bias=use_bias)(h)
    if use_bias:
        h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Conv2D(5, 3, padding="same", activation="relu", use_bias=use_bias)(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inp, keras.layers.Dense(3, use_bias=use_bias)(h))
    if use_bias:  # non-trivial BN statistics and biases, so every bias term matters
        rng = np.random.default_rng(seed)
        for layer in model.layers:
            layer.set_weights([w + rng.normal(0, 0.3, w.shape).astype(np.float32) if w.ndim == 1 else w
                               for w in layer.get_weights()])
            if isinstance(layer, keras.layers.BatchNormalization):
                gamma, beta, mean, var = layer.get_weights()
                layer.set_weights([gamma, beta, mean, np.abs(var) + 0.5])
    return model


def decomposition(model, **adapter_options):
    chain = layer_chain(tfxattr.as_model(model, **adapter_options), [], "fullgrad")
    x = tf.constant(IMAGES)
    f, (gx, spatial, other) = full_gradients(chain, x, tf.constant(TARGETS))
    return f.numpy(), (gx * x).numpy(), [s.numpy() for s in spatial], [o.numpy() for o in other]


def test_completeness_on_a_relu_network_with_biases():
    model = relu_net()
    f, input_term, spatial, other = decomposition(model)
    np.testing.assert_allclose(f, model(IMAGES).numpy()[np.arange(3), TARGETS], rtol=1e-5, atol=1e-5)
    assert len(spatial) == 3 and len(other) == 1  # conv, BN, fused-relu conv; dense
    bias_total = sum(s.sum((1, 2, 3)) for s in spatial) + sum(other)
    assert np.abs(bias_total).min() > 1e-2  # the biases carry part of the score
    np.testing.assert_allclose(input_term.sum((1, 2, 3)) + bias_total, f, rtol=1e-4, atol=1e-4)


def test_bias_free_network_the_input_gradient_is_complete_and_is_the_map():
    model = relu_net(use_bias=False)
    f, input_term, spatial, other = decomposition(model)
    assert spatial == [] and other == []
    np.testing.assert_allclose(input_term.sum((1, 2, 3)), f, rtol=1e-4, atol=1e-5)
    e = tfxattr.explain(model, IMAGES, "fullgrad", targets=TARGETS, batch_size=2)
    expected = normalise(tf.abs(tf.constant(input_term))).numpy().sum(-1, keepdims=True)
    np.testing.assert_allclose(e.attribution, expected, rtol=1e-5, atol=1e-6)


def test_the_map_sums_the_post_processed_terms():
    model = relu_net()
    _, input_term, spatial, _ = decomposition(model)
    expected = normalise(tf.abs(tf.constant(input_term))).numpy().sum(-1, keepdims=True)
    for s in spatial:
        post = normalise(tf.abs(tf.constant(s)))
        expected += resize(post, (SIZE, SIZE)).numpy().sum(-1, keepdims=True)
    e = tfxattr.explain(model, IMAGES, "fullgrad", targets=TARGETS)
    np.testing.assert_allclose(e.attribution, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match="needs a Keras model"):
        tfxattr.explain(tfxattr.as_model(lambda v: model(v), input_shape=(SIZE, SIZE, 3)), IMAGES, "fullgrad")


def offset_net(first, seed=1):
    """A ReLU network (conv with bias -> ReLU -> GAP -> dense) behind ``first``, a normalising layer or None."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((SIZE, SIZE, 3))
    h = first(inp) if first is not None else inp
    h = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(h)
    h = keras.layers.MaxPooling2D(2)(h)
    return keras.Model(inp, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h)))


def adapted_normalization():
    layer = keras.layers.Normalization()
    layer.adapt(IMAGES)
    return layer


@pytest.mark.parametrize("first,options", [
    (lambda: keras.layers.Rescaling(1 / 127.5, offset=-1.0), {}),
    (adapted_normalization, {}),
    (lambda: keras.layers.Rescaling(1 / 255.0), {"pixel_range": (-1, 1)}),  # the adapter's map has an offset
    (lambda: None, {"preprocess": lambda x: x / 127.5 - 1.0}),
], ids=["rescaling-offset", "normalization", "pixel-range-map", "preprocess"])
def test_completeness_counts_every_implicit_bias(first, options):
    # before: Rescaling(1/127.5, -1)'s offset was never counted: sum of terms -0.39, 0.53, 0.15 for
    # f = -0.18, -0.02, -0.31
    model = offset_net(first())
    images = IMAGES / 127.5 - 1.0 if options.get("pixel_range") == (-1, 1) else IMAGES
    chain = layer_chain(tfxattr.as_model(model, **options), [], "fullgrad")
    f, (gx, spatial, other) = full_gradients(chain, tf.constant(images), tf.constant(TARGETS))
    f = f.numpy()
    np.testing.assert_allclose(f, tfxattr.as_model(model, **options).scores(images)[np.arange(3), TARGETS],
                               rtol=1e-5, atol=1e-5)
    offset_term = spatial[0].numpy().sum((1, 2, 3))  # the first bias is the normalisation's, at the input
    assert spatial[0].shape[1:3] == (SIZE, SIZE) and np.abs(offset_term).max() > 0.05 * np.abs(f).max()
    total = (gx * images).numpy().sum((1, 2, 3)) + sum(s.numpy().sum((1, 2, 3)) for s in spatial) + sum(other)
    np.testing.assert_allclose(total, f, rtol=1e-4, atol=1e-4)


def test_resize_aligns_corners_like_the_authors():
    m = tf.constant(np.arange(4, dtype=np.float32).reshape(1, 2, 2, 1))
    out = resize(m, (3, 3)).numpy()[0, :, :, 0]
    np.testing.assert_allclose(out, [[0, 0.5, 1], [1, 1.5, 2], [2, 2.5, 3]])  # F.interpolate(align_corners=True)
    same = tf.random.uniform((2, 5, 5, 3))
    np.testing.assert_allclose(resize(same, (5, 5)).numpy(), same.numpy())
