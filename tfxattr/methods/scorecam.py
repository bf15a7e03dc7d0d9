"""Score-CAM (Wang et al., CVPR Workshops 2020, Sec. 3 and Algorithm 1) and Faster-Score-CAM.

Gradient-free: each channel ``A_k`` of the layer, upsampled to the input and min-max normalised to
[0, 1] (``H_k = s(Up(A_k))``), masks the image: ``x_k = b + H_k (x - b)`` with ``b`` the black image
(the paper's ``X o H_k``, in pixel space). The channel's *Channel-wise Increase of Confidence*
``C_k = f_c(x_k) - f_c(b)``; the weights are its softmax over the channels, ``w = softmax(C)``
(the constant ``f_c(b)`` cancels there), and ``L = ReLU(sum_k w_k A_k)``.

``max_n`` (Faster-Score-CAM, as tf-keras-vis's ``max_N``): only the ``max_n`` channels with the
largest spatial variance of ``A_k`` are scored; the others get weight 0 (the softmax runs over the
kept ones). The masked images run in chunks of ``batch_size`` rows: C (or ``max_n``) forward passes
of the whole model per image, no gradients.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..batching import spans
from ..checks import positive_int
from .cam import CAM, channel_rows


class ScoreCAM(CAM):
    name = "scorecam"
    summary = "Score-CAM (Wang et al. 2020): softmax of the scores of channel-masked inputs; max_n: Faster-Score-CAM"
    defaults = {**CAM.defaults, "max_n": None}

    def validate(self):
        super().validate()
        positive_int(self.options["max_n"], "max_n", allow_none=True)

    def selected(self, activations) -> np.ndarray:
        """(n, K) channel indices scored per image: all, or the ``max_n`` of largest spatial variance."""
        n, channels = activations.shape[0], activations.shape[-1]
        max_n = self.options["max_n"]
        if max_n is None or max_n >= channels:
            return np.tile(np.arange(channels), (n, 1))
        variance = tf.math.reduce_variance(activations, axis=[1, 2]).numpy()
        return np.sort(np.argsort(-variance, axis=1, kind="stable")[:, :max_n], axis=1)

    def masked_scores(self, evaluator, activations, images, targets, channels) -> np.ndarray:
        """(n, K) ``f_c`` of the images masked by each channel of ``channels`` (n, K)."""
        lo = float(evaluator.pixel_range[0])
        rows = channel_rows(len(images), channels)
        scores = np.zeros(len(rows), np.float32)
        for span in spans(len(rows), evaluator.batch_size):
            img, ch = rows[span, 0], rows[span, 1]
            a = tf.gather(activations, img)
            maps = tf.gather(a, ch, axis=3, batch_dims=1)[..., None]  # (rows, h, w, 1)
            masks = normalised_masks(maps, images.shape[1:3])
            masked = lo + masks * (images[img] - lo)
            scores[span] = np.asarray(evaluator.values(masked, targets[img]))
        return scores.reshape(channels.shape)

    def channel_weights(self, evaluator, chain, activations, images, targets):
        channels = self.selected(activations)
        scores = self.masked_scores(evaluator, activations, images, targets, channels)
        w = np.zeros((len(images), activations.shape[-1]), np.float32)
        np.put_along_axis(w, channels, tf.nn.softmax(scores.astype(np.float64), axis=1).numpy(), axis=1)
        return w


def normalised_masks(maps, size):
    """Activation maps (rows, h, w, 1) upsampled bilinearly to ``size`` and min-max scaled to [0, 1]
    per row (a constant map gives a zero mask)."""
    up = tf.image.resize(tf.cast(maps, tf.float32), size, method="bilinear")
    lo = tf.reduce_min(up, axis=[1, 2, 3], keepdims=True)
    hi = tf.reduce_max(up, axis=[1, 2, 3], keepdims=True)
    return tf.math.divide_no_nan(up - lo, hi - lo)
