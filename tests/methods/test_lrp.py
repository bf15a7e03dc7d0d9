"""LRP (Bach et al. 2015; Montavon et al. 2019): LRP-0 is gradient x input on a bias-free ReLU network; LRP-epsilon
with epsilon -> 0 conserves relevance (sum = logit) without biases; each linear rule, z^B included, conserves
relevance on its own; the composites' rules land on the right layers; one Keras application and a nested one
behind preprocessing layers run; eager equals traced."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_apps
import tfxattr
from tests.helpers import slow
from tfxattr.methods import get_method
from tfxattr.methods.lrp import _bounds
from tfxattr.methods.lrp_rules import COMPOSITES, RULES, linear_rule, stabilise
from tfxattr.methods.lrp_walk import plan_of
from tfxattr.models import as_model
from tfxattr.models.layers import layer_chain

SIZE = 12
IMAGES = np.random.default_rng(3).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)
TARGETS = np.array([1, 0, 2], np.int32)


def relu_net(use_bias=False, seed=0, softmax=False):
    """Piecewise-linear with every layer kind LRP treats: conv (+ folded BN), ReLU, max- and average pooling,
    a residual Add, a Concatenate, a depthwise and a separable conv, GAP, dense. Without biases and with a
    mean-free, offset-free BN it is bias-free."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Rescaling(1 / 255.0)(inp)
    h = keras.layers.Conv2D(6, 3, padding="same", use_bias=use_bias, name="first")(h)
    h = keras.layers.BatchNormalization(center=use_bias, name="bn")(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.MaxPooling2D(2)(h)
    a = keras.layers.Conv2D(6, 3, padding="same", activation="relu", use_bias=use_bias)(h)
    h = keras.layers.Add()([h, a])
    b = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=use_bias, activation="relu")(h)
    c = keras.layers.SeparableConv2D(4, 3, padding="same", use_bias=use_bias, activation="relu")(h)
    h = keras.layers.Concatenate()([b, c])
    h = keras.layers.AveragePooling2D(2)(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    h = keras.layers.Dense(8, activation="relu", use_bias=use_bias)(h)
    out = keras.layers.Dense(3, use_bias=use_bias, activation="softmax" if softmax else None)(h)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(seed)
    for layer in model.layers:  # non-trivial BN statistics; biases when asked
        if isinstance(layer, keras.layers.BatchNormalization):
            weights = layer.get_weights()
            gamma, var = rng.uniform(0.5, 2, 6), rng.uniform(0.5, 2, 6)
            mean = rng.normal(0, 0.3, 6) if use_bias else np.zeros(6)
            layer.set_weights([gamma, *weights[1:-2], mean, var] if use_bias else [gamma, mean, var])
        elif use_bias and getattr(layer, "use_bias", False):
            layer.bias.assign(rng.normal(0, 0.3, layer.bias.shape))
    return model


def gradient_times_input(model, x, targets):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        f = tf.gather(model(x), targets, axis=1, batch_dims=1)
    return f.numpy(), (tape.gradient(f, x) * x).numpy()


def lrp(model, x=IMAGES, targets=TARGETS, **options):
    return get_method("lrp", **options).attribute(as_model(model, input_range=(0, 255)), x, targets)


def test_lrp_zero_equals_gradient_times_input_on_a_bias_free_relu_network():
    model = relu_net()
    plan = plan_of(model)
    assert len(plan.folded) == 1 and plan.first == {next(i for i, s in enumerate(plan.graph.steps)
                                                        if s.path == "first")}
    f, gxi = gradient_times_input(model, IMAGES, TARGETS)
    r = lrp(model, rule="zero")
    np.testing.assert_allclose(r, gxi, atol=1e-4 * np.abs(gxi).max())
    np.testing.assert_allclose(r.sum((1, 2, 3)), f, rtol=1e-4)


def test_epsilon_to_zero_conserves_relevance_without_biases_and_biases_absorb_it():
    model = relu_net()
    f = model(IMAGES).numpy()[np.arange(3), TARGETS]
    for eps in (1e-3, 1e-9):
        r = lrp(model, rule="epsilon", epsilon=eps)
        if eps < 1e-6:
            np.testing.assert_allclose(r.sum((1, 2, 3)), f, rtol=1e-4)
    biased = relu_net(use_bias=True)
    fb = biased(IMAGES).numpy()[np.arange(3), TARGETS]
    rb = lrp(biased, rule="epsilon", epsilon=1e-9)
    assert np.abs(rb.sum((1, 2, 3)) - fb).max() > 1e-2 * np.abs(fb).max()  # the biases took their share


def test_a_final_softmax_is_removed_lrp_explains_the_logit():
    plain, squashed = relu_net(seed=1), relu_net(seed=1, softmax=True)
    np.testing.assert_allclose(lrp(squashed, rule="zero"), lrp(plain, rule="zero"), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", ["dense", "conv", "depthwise", "separable"])
@pytest.mark.parametrize("rule", RULES)
def test_each_rule_conserves_relevance_on_its_own(rule, kind):
    """sum_i R_i = sum_j R_j for one bias-free linear stage (every rule; z^B with bounds l <= x <= h)."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (2, 5, 5, 3)), tf.float32)
    if kind == "dense":
        x = tf.reshape(x, (2, -1))
        w = tf.constant(rng.normal(0, 1, (75, 4)), tf.float32)
        fn = lambda v, k: tf.tensordot(v, k, 1)  # noqa: E731
    elif kind == "conv":
        w = tf.constant(rng.normal(0, 1, (3, 3, 3, 4)), tf.float32)
        fn = lambda v, k: tf.nn.conv2d(v, k, 1, "VALID")  # noqa: E731
    elif kind == "depthwise":
        w = tf.constant(rng.normal(0, 1, (3, 3, 3, 2)), tf.float32)
        fn = lambda v, k: tf.nn.depthwise_conv2d(v, k, [1, 1, 1, 1], "VALID")  # noqa: E731
    else:
        w = tf.constant(rng.normal(0, 1, (1, 1, 3, 4)), tf.float32)
        fn = lambda v, k: tf.nn.conv2d(v, k, 1, "VALID")  # noqa: E731
    z = fn(x, w)
    r_out = z * tf.constant(rng.uniform(0.5, 1.5, z.shape), tf.float32)  # relevance of the same sign as z
    bounds = (-tf.ones_like(x[:1]), tf.ones_like(x[:1]))
    r_in = linear_rule(rule, fn, x, w, 0.0, r_out, eps=1e-9, bounds=bounds).numpy()
    assert r_in.shape == x.shape and np.all(np.isfinite(r_in))
    expected = r_out.numpy().sum()
    if rule.startswith("alpha"):  # alpha-beta conserves where an output has positive and negative contributions
        alpha, beta = (1.0, 0.0) if rule == "alpha1_beta0" else (2.0, 1.0)
        pos, neg = (lambda t: tf.maximum(t, 0.0)), (lambda t: tf.minimum(t, 0.0))
        z_pos = fn(pos(x), pos(w)) + fn(neg(x), neg(w))
        z_neg = fn(pos(x), neg(w)) + fn(neg(x), pos(w))
        kept = [tf.reduce_sum(r_out * z / stabilise(z)).numpy() for z in (z_pos, z_neg)]  # 0 where z = 0
        expected = alpha * kept[0] - beta * kept[1]
    np.testing.assert_allclose(r_in.sum(), expected, rtol=1e-4)
    if rule == "zero":
        np.testing.assert_allclose(r_in.reshape(2, -1).sum(1), r_out.numpy().reshape(2, -1).sum(1), rtol=1e-4)


def test_box_bounds_are_the_pixel_range_through_the_preprocessing():
    model = relu_net()
    adapter = as_model(model, input_range=(0, 255))
    chain = layer_chain(adapter, [], "lrp")
    plan = plan_of(model)
    (low, high), = _bounds(chain, plan, tf.constant(IMAGES), (0.0, 255.0)).values()
    np.testing.assert_allclose(low.numpy(), 0.0)
    np.testing.assert_allclose(high.numpy(), 1.0)
    # a per-channel, channel-flipping preprocessing ("caffe"): bounds per channel, relevance flipped back
    caffe = keras.applications.vgg16.preprocess_input
    adapter = as_model(relu_net(), preprocess=caffe, input_range=(0, 255))
    chain = layer_chain(adapter, [], "lrp")
    (low, high), = _bounds(chain, plan_of(chain.stages[0]), tf.constant(IMAGES), (0.0, 255.0)).values()
    mean = np.array([103.939, 116.779, 123.68])
    np.testing.assert_allclose(low.numpy()[0, 0, 0], -mean / 255, rtol=1e-5)
    np.testing.assert_allclose(high.numpy()[0, 0, 0], (255 - mean) / 255, rtol=1e-5)


def test_z_box_first_layer_conserves_relevance_end_to_end():
    """Bias-free network, z^B on the first layer, epsilon -> 0 elsewhere: the pixels' relevance sums to the logit."""
    model = relu_net()
    f = model(IMAGES).numpy()[np.arange(3), TARGETS]
    r = lrp(model, composite="epsilon_gamma_box", epsilon=1e-9)
    assert r.shape == IMAGES.shape
    # gamma (conv) conserves where z != 0; epsilon (dense) with tiny epsilon conserves: all of it arrives
    np.testing.assert_allclose(r.sum((1, 2, 3)), f, rtol=1e-3)


def test_composites_choose_a_rule_per_layer_kind_and_rule_overrides():
    model = relu_net(use_bias=True)
    maps = {name: lrp(model, composite=name) for name in COMPOSITES}
    for name, m in maps.items():
        assert np.all(np.isfinite(m)) and np.any(m != 0), name
    assert not np.allclose(maps["epsilon_plus"], maps["epsilon_plus_flat"])
    # flat on the first layer: the relevance of a pixel does not depend on its value within the receptive field
    assert np.all(maps["epsilon_plus_flat"][:, 1:-1, 1:-1] != 0)
    alpha1 = lrp(model, rule="alpha1_beta0")
    np.testing.assert_allclose(alpha1, lrp(model, rule="alpha1_beta0", epsilon=0.5))  # epsilon unused there
    with pytest.raises(ValueError, match="not both"):
        get_method("lrp", rule="epsilon", composite="epsilon_plus")
    with pytest.raises(ValueError, match="rule must be one of"):
        get_method("lrp", rule="box")
    with pytest.raises(ValueError, match="composite"):
        get_method("lrp", composite="epsilon_gama_box")
    with pytest.raises(ValueError, match="gamma"):
        get_method("lrp", gamma=-1)


def test_an_unknown_layer_is_refused_by_name():
    inp = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Conv2D(2, 3)(inp)
    h = keras.layers.LayerNormalization(name="odd")(h)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(h)))
    with pytest.raises(ValueError, match="no rule for layer 'odd' of type LayerNormalization"):
        lrp(model, targets=[0, 1, 0])


def test_eager_equals_traced():
    adapter = as_model(relu_net(use_bias=True), input_range=(0, 255), batch_size=2)
    for options in ({}, {"composite": "epsilon_plus_flat"}, {"rule": "alpha2_beta1"}):
        method = get_method("lrp", **options)
        assert method.export_refusal() == ""
        eager = method.attribute(adapter, IMAGES, TARGETS)
        spec = [tf.TensorSpec((None, SIZE, SIZE, 3), tf.float32), tf.TensorSpec((None,), tf.int32)]
        fn = tf.function(lambda x, t: method.attribute(adapter, x, t), input_signature=spec)
        traced = fn(tf.constant(IMAGES), tf.constant(TARGETS)).numpy()
        np.testing.assert_allclose(traced, eager, rtol=1e-5, atol=1e-6 * np.abs(eager).max())


def nested_application(size=32):
    """A Keras application (MobileNetV2, no top) inside a model, behind Rescaling preprocessing layers."""
    keras.utils.set_random_seed(0)
    app = keras.applications.MobileNetV2(input_shape=(size, size, 3), weights=None, include_top=False,
                                         pooling="avg", alpha=0.35)
    inp = keras.Input((size, size, 3))
    h = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inp)
    return keras.Model(inp, keras.layers.Dense(4)(app(h)), name="transfer")


def test_a_nested_application_behind_preprocessing_layers():
    """An untrained network has no biases (zero init, identity BN statistics), so LRP-0 conserves the logit exactly
    through every depthwise/pointwise/BN-folded/ReLU6/residual layer. (Its activations shrink to ~1e-11 by the
    output: the stabilisers of epsilon/gamma/alpha-beta, 1e-6, absorb all of such a weak relevance, as they should.)"""
    model = nested_application()
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    plan = plan_of(model)
    assert plan.folded and len(plan.first) == 1
    e = tfxattr.explain(model, images, "lrp", targets=[1, 3], batch_size=1, rule="zero")
    assert e.attribution.shape == images.shape and np.all(np.isfinite(e.attribution))
    logits = model(images).numpy()[[0, 1], [1, 3]]
    np.testing.assert_allclose(e.attribution.sum((1, 2, 3)), logits, rtol=1e-3)
    one = tfxattr.explain(model, images[1], "lrp", targets=3, rule="zero")
    np.testing.assert_allclose(one.attribution, e.attribution[1], rtol=1e-4, atol=1e-5 * np.abs(one.attribution).max())


def check_application(name):
    """LRP-0 on an untrained (bias-free) application: finite, and the relevance sums to the pre-softmax logit."""
    spec = keras_apps.get(name)
    keras.backend.clear_session()
    model = keras_apps.build(name, weights=None)
    h, w = spec.input_size
    image = np.random.default_rng(0).integers(0, 256, (1, h, w, 3)).astype(np.float32)
    e = tfxattr.explain(model, image, "lrp", preprocess=spec.preprocess, targets=7, rule="zero")
    assert e.attribution.shape == (1, h, w, 3) and np.all(np.isfinite(e.attribution))
    head = model.get_layer("predictions")
    features = keras.Model(model.inputs, head.input)(spec.preprocess(image.copy()))
    logit = (features @ head.kernel + head.bias).numpy()[0, 7]
    np.testing.assert_allclose(e.attribution.sum(), logit, rtol=1e-3)


def test_lrp_on_mobilenet_v2():
    check_application("mobilenet_v2")


@slow("LRP on a big Keras application (weights=None, one image)")
@pytest.mark.parametrize("name", [n for n in keras_apps.NAMES if n != "mobilenet_v2"])
def test_lrp_on_each_big_keras_application(name):
    check_application(name)
