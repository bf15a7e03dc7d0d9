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

import tensorflow as tf

from ..batching import rows
from ..models.compat import graph_function
from ..models.layers import input_spec
from .cam import CAM, channel_rows, row_values


class AblationCAM(CAM):
    name = "ablationcam"
    summary = "Ablation-CAM (Desai & Ramaswamy 2020): relative score drop when each channel is zeroed"

    def channel_weights(self, evaluator, chain, activations, images, targets):
        head = chain.function("ablation_head", lambda: _ablated_scores(chain))
        a, t = activations, targets
        n, c = rows(a), a.shape[-1]
        y = head(a, tf.fill(tf.stack([n]), -1), t)
        img, ch = channel_rows(n, tf.tile(tf.range(c)[None], tf.stack([n, 1])))
        dropped = row_values(lambda i, k: head(tf.gather(a, i), k, tf.gather(t, i)), n * c, evaluator.batch_size,
                             img, ch)
        return tf.math.divide_no_nan(y[:, None] - tf.reshape(dropped, tf.stack([n, c])), y[:, None])


def _ablated_scores(chain):
    """``(A, channel, targets) -> f_c(A with channel k of each row zeroed)``; channel -1 ablates nothing."""
    spec = input_spec(chain.stages[-1])

    def scores(a, channel, targets):
        keep = 1.0 - tf.one_hot(channel, tf.shape(a)[-1], dtype=a.dtype)  # one_hot(-1) is all zeros
        return chain.explained(a * keep[:, None, None, :], targets)
    return graph_function(scores, input_signature=[spec, tf.TensorSpec([None], tf.int32),
                                                   tf.TensorSpec([None], tf.int32)])
