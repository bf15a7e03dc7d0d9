"""Ablation-CAM (Desai & Ramaswamy, WACV 2020, Sec. 3; equations cited by formula, not number).

Gradient-free: the weight of channel ``k`` is the relative drop of the class score when that
channel of the layer is set to zero, ``w_k = (y_c - y_c^k) / y_c``, and ``L = ReLU(sum_k w_k A_k)``.
``y_c`` is the explained scalar ``f_c`` (the logit by default; ``output="probability"`` for the
softmax score). Dividing by ``y_c`` is the paper's normalisation: it scales each image's map by one
positive constant when ``y_c > 0`` and flips its sign when ``y_c < 0`` (a logit below zero); ``y_c = 0``
gives a zero map. The (image, channel) ablations run through the layers after ``A`` in chunks of
``batch_size`` rows: C head passes per image, no gradients.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..batching import spans
from ..models.layers import input_spec
from .cam import CAM, channel_rows


class AblationCAM(CAM):
    name = "ablationcam"
    summary = "Ablation-CAM (Desai & Ramaswamy 2020): relative score drop when each channel is zeroed"

    def channel_weights(self, evaluator, chain, activations, images, targets):
        head = chain.function("ablation_head", lambda: _ablated_scores(chain))
        n, channels = activations.shape[0], activations.shape[-1]
        y = head(activations, tf.constant(np.full(n, -1, np.int32)), tf.constant(targets)).numpy()
        rows = channel_rows(n, np.arange(channels))
        dropped = np.zeros(len(rows), np.float32)
        for span in spans(len(rows), evaluator.batch_size):
            img, ch = rows[span, 0], rows[span, 1]
            dropped[span] = head(tf.gather(activations, img), tf.constant(ch, tf.int32),
                                 tf.constant(targets[img])).numpy()
        drop = y[:, None] - dropped.reshape(n, channels)
        return np.divide(drop, y[:, None], out=np.zeros_like(drop), where=y[:, None] != 0)


def _ablated_scores(chain):
    """``(A, channel, targets) -> f_c(A with channel k of each row zeroed)``; channel -1 ablates nothing."""
    spec = input_spec(chain.stages[-1])

    def scores(a, channel, targets):
        keep = 1.0 - tf.one_hot(channel, tf.shape(a)[-1], dtype=a.dtype)  # one_hot(-1) is all zeros
        return chain.explained(a * keep[:, None, None, :], targets)
    return tf.function(scores, input_signature=[spec, tf.TensorSpec([None], tf.int32),
                                                tf.TensorSpec([None], tf.int32)])
