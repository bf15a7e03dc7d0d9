"""LIFT-CAM (Jung & Oh 2021): the weights are DeepLIFT contributions of the channels (zero reference).
On a linear head they equal the contributions computed by hand; on any head they sum to
f_c(A) - f_c(0) (DeepLIFT's summation-to-delta)."""
import numpy as np
import tensorflow as tf

import tfxattr
from tests.methods.cam_reference import IMAGES, TARGETS, cnn, layer_tensors, resized_cam
from tfxattr.methods.liftcam import LIFTCAM


def test_weights_equal_deeplift_contributions_on_a_linear_head():
    model = cnn()  # c2 -> global average pooling -> dense: linear in the activations
    chain, a, g, f = layer_tensors(LIFTCAM(layer="c2"), model)
    kernel = model.get_layer("logits").get_weights()[0]
    # DeepLIFT on a linear unit: C_ijk = (A_ijk - 0) * W_kc / (h w)
    contributions = a.numpy() * kernel[:, TARGETS].T[:, None, None, :] / np.prod(a.shape[1:3])
    expected = contributions.sum((1, 2))
    w = LIFTCAM.weights(a, g, f, lambda v: chain.explained(v, tf.constant(TARGETS))).numpy()[:, 0, 0, :]
    np.testing.assert_allclose(w, expected, rtol=1e-4, atol=1e-6)
    e = tfxattr.explain(model, IMAGES, "liftcam", targets=TARGETS, layer="c2")
    np.testing.assert_allclose(e.attribution, resized_cam(a, expected[:, None, None, :]), rtol=1e-4, atol=1e-6)


def test_contributions_sum_to_the_score_difference_on_a_nonlinear_head():
    model = cnn(hidden=6)
    chain, a, g, f = layer_tensors(LIFTCAM(layer="c2"), model)
    head = lambda v: chain.explained(v, tf.constant(TARGETS))  # noqa: E731
    w = LIFTCAM.weights(a, g, f, head).numpy()
    np.testing.assert_allclose(w.sum((1, 2, 3)), (f - head(tf.zeros_like(a))).numpy(), rtol=1e-4, atol=1e-5)
