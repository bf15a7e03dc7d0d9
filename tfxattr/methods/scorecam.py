"""Score-CAM (Wang et al., CVPR Workshops 2020, Sec. 3 and Algorithm 1) and Faster-Score-CAM.

Gradient-free: each channel ``A_k`` of the layer, upsampled to the input and min-max normalised to
[0, 1] (``H_k = s(Up(A_k))``), masks the image: ``x_k = b + H_k (x - b)`` with ``b`` the black image
(the paper's ``X o H_k``, in pixel space). The channel's *Channel-wise Increase of Confidence*
``C_k = f_c(x_k) - f_c(b)``; the weights are its softmax over the channels, ``w = softmax(C)``
(the constant ``f_c(b)`` cancels there), and ``L = ReLU(sum_k w_k A_k)``.

``top_channels`` (Faster-Score-CAM, tf-keras-vis's ``max_N``): only the ``top_channels`` channels with the
largest spatial variance of ``A_k`` are scored; the others get weight 0 (the softmax runs over the
kept ones). The masked images run in chunks of ``batch_size`` rows: C (or ``top_channels``) forward passes
of the whole model per image, no gradients.
"""
from __future__ import annotations

import tensorflow as tf

from ..batching import rows
from ..checks import positive_int
from .cam import CAM, channel_rows, row_values


class ScoreCAM(CAM):
    name = "scorecam"
    summary = ("Score-CAM (Wang et al. 2020): softmax of the scores of channel-masked inputs; top_channels: "
               "Faster-Score-CAM")
    defaults = {**CAM.defaults, "top_channels": None}

    def validate(self):
        super().validate()
        positive_int(self.options["top_channels"], "top_channels", allow_none=True)

    def selected(self, activations):
        """(n, K) int32 channel indices scored per image, ascending: all, or the ``top_channels`` of largest
        spatial variance (ties: the lower index first)."""
        c = activations.shape[-1]
        keep = c if self.options["top_channels"] is None else min(c, self.options["top_channels"])
        variance = tf.math.reduce_variance(activations, axis=[1, 2])
        return tf.sort(tf.math.top_k(variance, keep).indices, axis=1)

    def masked_scores(self, evaluator, activations, images, targets, channels):
        """(n, K) ``f_c`` of the images masked by each channel of ``channels`` (n, K), in chunks of
        ``batch_size`` (image, channel) rows."""
        a, x, t = activations, images, targets
        lo, size = float(evaluator.pixel_range[0]), tuple(x.shape[1:3])
        n = rows(a)
        img, ch = channel_rows(n, channels)

        def masked(i, k):
            masks = normalised_masks(tf.gather(tf.gather(a, i), k, axis=3, batch_dims=1)[..., None], size)
            return evaluator.values(lo + masks * (tf.gather(x, i) - lo), tf.gather(t, i))
        return tf.reshape(row_values(masked, n * channels.shape[1], evaluator.batch_size, img, ch),
                          tf.stack([n, channels.shape[1]]))

    def channel_weights(self, evaluator, chain, activations, images, targets):
        channels = self.selected(activations)
        scores = self.masked_scores(evaluator, activations, images, targets, channels)
        soft = tf.nn.softmax(tf.cast(scores, tf.float64), axis=1)  # over the kept channels; the others weigh 0
        one_hot = tf.one_hot(channels, activations.shape[-1], dtype=tf.float64)
        return tf.cast(tf.reduce_sum(soft[..., None] * one_hot, axis=1), tf.float32)


def normalised_masks(maps, size):
    """Activation maps (rows, h, w, 1) upsampled bilinearly to ``size`` and min-max scaled to [0, 1]
    per row (a constant map gives a zero mask)."""
    up = tf.image.resize(tf.cast(maps, tf.float32), size, method="bilinear")
    lo = tf.reduce_min(up, axis=[1, 2, 3], keepdims=True)
    hi = tf.reduce_max(up, axis=[1, 2, 3], keepdims=True)
    return tf.math.divide_no_nan(up - lo, hi - lo)
