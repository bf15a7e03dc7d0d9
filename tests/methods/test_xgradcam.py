"""XGrad-CAM (Fu et al. 2020): on a head linear in the activations, its weights satisfy the paper's
sensitivity axiom (sum_ij w_k A_ijk is the score drop when channel k is removed) and conservation
axiom (the unrectified map sums to the score minus the head's bias)."""
import numpy as np
import tensorflow as tf

from tests.methods.cam_reference import TARGETS, cnn, layer_tensors
from tfxattr.methods.xgradcam import XGradCAM


def test_sensitivity_and_conservation_axioms_on_a_linear_head():
    model = cnn()
    chain, a, g, f = layer_tensors(XGradCAM(layer="c2"), model)
    head = lambda v: chain.explained(v, tf.constant(TARGETS))  # noqa: E731
    w = XGradCAM.weights(a, g, f, head).numpy()
    a, f = a.numpy(), f.numpy()
    contribution = w[:, 0, 0, :] * a.sum((1, 2))
    for k in range(a.shape[-1]):
        removed = a.copy()
        removed[..., k] = 0
        np.testing.assert_allclose(contribution[:, k], f - head(tf.constant(removed)).numpy(), rtol=1e-4, atol=1e-5)
    bias = model.get_layer("logits").get_weights()[1][TARGETS]
    np.testing.assert_allclose((w * a).sum((1, 2, 3)), f - bias, rtol=1e-4, atol=1e-5)


def test_a_channel_that_is_zero_everywhere_gets_weight_zero():
    a = tf.constant(np.stack([np.zeros((2, 2)), np.ones((2, 2))], -1)[None], tf.float32)
    w = XGradCAM.weights(a, tf.ones_like(a), None, None).numpy()
    np.testing.assert_array_equal(w.reshape(-1), [0.0, 1.0])
