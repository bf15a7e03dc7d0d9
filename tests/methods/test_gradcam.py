"""Grad-CAM / Grad-CAM++: the formulas against an independent reference, class specificity, batching,
default layers, and localisation on the trained demo model."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxattr
from tests.helpers import build_chain_cnn
from tfxattr.demo import make_demo_data
from tfxattr.methods.gradcam import GradCAM, GradCAMPlusPlus


@pytest.fixture(scope="module")
def chain():
    return build_chain_cnn(((6, "tanh"), (8, "relu")))


X = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype(np.float32)


def reference_cam(model, layer, x, targets, plus_plus=False, probability=False):
    """Grad-CAM(++) from a two-output keras.Model and a GradientTape (no tfxattr code)."""
    both = keras.Model(model.inputs, [model.get_layer(layer).output, model.output])
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        a, out = both(x)
        if probability:
            out = tf.nn.softmax(out)
        f = tf.gather(out, targets, axis=1, batch_dims=1)
    g = tape.gradient(f, a).numpy()
    a = a.numpy()
    if plus_plus:
        denom = 2 * g ** 2 + a.sum((1, 2), keepdims=True) * g ** 3
        alpha = np.where(denom != 0, g ** 2 / np.where(denom != 0, denom, 1), 0)
        w = (alpha * np.maximum(g, 0)).sum((1, 2), keepdims=True)
    else:
        w = g.mean((1, 2), keepdims=True)
    cam = np.maximum((w * a).sum(-1, keepdims=True), 0)
    return tf.image.resize(cam, x.shape[1:3], method="bilinear").numpy()


@pytest.mark.parametrize("method,plus_plus", [("gradcam", False), ("gradcam++", True)])
@pytest.mark.parametrize("output", ["logit", "probability"])
def test_matches_reference_formula(chain, method, plus_plus, output):
    targets = np.array([0, 3, 1, 2])
    e = tfxattr.explain(chain, X, method, targets=targets, output=output)
    assert e.attribution.shape == (4, 16, 16, 1)
    ref = reference_cam(chain, "c2", X, targets, plus_plus, probability=output == "probability")
    assert np.abs(ref).max() > 0
    np.testing.assert_allclose(e.attribution, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_class_specific_not_the_whole_softmax(chain):
    """The gradient of the sum of all probabilities is zero: a CAM taken from it would be empty."""
    maps = [tfxattr.explain(chain, X[:1], "gradcam", targets=t, output="probability").attribution for t in range(4)]
    assert all(np.abs(m).max() > 0 for m in maps)
    assert not np.allclose(maps[0], maps[1])


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_batching_and_per_image_targets(chain, method):
    targets = [2, 0, 3, 1]
    together = tfxattr.explain(chain, X, method, targets=targets, batch_size=32).attribution
    np.testing.assert_allclose(tfxattr.explain(chain, X, method, targets=targets, batch_size=3).attribution,
                               together, rtol=1e-5, atol=1e-7)
    for i, t in enumerate(targets):
        np.testing.assert_allclose(tfxattr.explain(chain, X[i], method, targets=t).attribution, together[i],
                                   rtol=1e-5, atol=1e-7)


def test_default_and_named_layers(chain):
    adapter = tfxattr.as_model(chain)
    assert GradCAM().layer(adapter) == "c2"  # the last valid 4-D split point
    assert GradCAM(layer="c1").layer(adapter) == "c1"
    a = tfxattr.explain(chain, X[:1], "gradcam", targets=0, layer="p1").attribution
    np.testing.assert_allclose(a, reference_cam(chain, "p1", X[:1], np.array([0])), rtol=1e-5, atol=1e-7)
    keras.utils.set_random_seed(0)
    app = keras.applications.MobileNetV2(weights=None, input_shape=(64, 64, 3), include_top=False, name="backbone")
    inp = keras.Input((64, 64, 3))
    h = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    model = keras.Model(inp, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(app(h))))
    nested = tfxattr.as_model(model)
    assert GradCAM(app="mobilenet_v2").layer(nested) == "backbone/out_relu"
    assert GradCAMPlusPlus(app="MobileNetV2").layer(nested) == "backbone/out_relu"


def test_errors(chain):
    with pytest.raises(ValueError, match="relu"):
        GradCAM(relu=1)
    with pytest.raises(ValueError, match="'gap' has output shape"):
        tfxattr.explain(chain, X[:1], "gradcam", layer="gap")
    with pytest.raises(ValueError, match="no layer 'c9'"):
        tfxattr.explain(chain, X[:1], "gradcam", layer="c9")
    with pytest.raises(ValueError, match="app='vgg16'"):
        tfxattr.explain(chain, X[:1], "gradcam", app="vgg16")
    with pytest.raises(TypeError, match="needs a Keras model"):
        tfxattr.explain(tfxattr.as_model(lambda x: chain(x), input_shape=(16, 16, 3)), X[:1], "gradcam")


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_localises_the_object_on_the_demo_model(demo_model, method):
    """Mass inside the object mask vs the mask's area fraction, for the true class.

    A map that ignores the object puts, on average, a fraction of its mass equal to the mask's area
    inside the mask (ratio 1; a coin flip per image for "more than the area"). The demo model
    classifies these unseen images correctly and its last_conv (8x8) sees only the object, so we ask
    for more than the area on at least 75% of 24 images (under the coin-flip null, P = 0.011) and a
    median ratio of at least 1.5. Measured here: 83-96% and 2.0-2.2 (Grad-CAM), 100% and 1.8-2.0 (++).
    """
    data = make_demo_data(24, seed=1)
    e = tfxattr.explain(demo_model, data["images"], method, targets=data["labels"])
    maps, masks = e.map, data["masks"]
    inside = (maps * masks).sum((1, 2)) / np.maximum(maps.sum((1, 2)), 1e-12)
    area = masks.mean((1, 2))
    assert np.mean(inside > area) >= 0.75
    assert np.median(inside / area) >= 1.5
