"""Ablation-CAM (Desai & Ramaswamy 2020): each weight is the relative drop of the score when its channel
is zeroed, measured here by zeroing the channel in the model's own head."""
import numpy as np
import tensorflow as tf

import tfxattr
from tests.methods.cam_reference import IMAGES, TARGETS, cnn, layer_tensors, resized_cam
from tfxattr.methods.ablationcam import AblationCAM
from tfxattr.models.layers import split_model


def test_weights_are_the_relative_score_drop_of_each_zeroed_channel():
    model = cnn(hidden=8)  # a nonlinear head: the drop is not linear in the channel
    method = AblationCAM(layer="c2")
    chain, a, _, f = layer_tensors(method, model)
    _, head = split_model(model, "c2")
    a, f = a.numpy(), f.numpy()
    expected = np.zeros((len(a), a.shape[-1]))
    for k in range(a.shape[-1]):
        zeroed = a.copy()
        zeroed[..., k] = 0
        logits = head(tf.constant(zeroed)).numpy()
        expected[:, k] = (f - logits[np.arange(len(a)), TARGETS]) / f
    adapter = tfxattr.as_model(model, batch_size=4)  # 3 images x 5 channels in chunks of 4 rows
    w = np.asarray(method.channel_weights(adapter, chain, tf.constant(a), IMAGES, TARGETS))
    np.testing.assert_allclose(w, expected, rtol=1e-4, atol=1e-6)
    e = tfxattr.explain(model, IMAGES, "ablationcam", targets=TARGETS, layer="c2", batch_size=2)
    np.testing.assert_allclose(e.attribution, resized_cam(a, w[:, None, None, :]), rtol=1e-4, atol=1e-6)
