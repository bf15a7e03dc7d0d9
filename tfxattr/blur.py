"""Gaussian blur as two matrix products, numerically equal to ``scipy.ndimage.gaussian_filter``.

``gaussian_filter(img, sigma=[s, s, 0], mode="constant")`` (what PAIR's BlurIG uses) truncates the
kernel at ``int(4 * s + 0.5)`` and pads with zeros, which is the linear map ``G_s @ img @ G_s^T`` per
channel. Building ``G_s`` in TF lets a whole batch of images, each with its own sigma, blur in one call.
"""
from __future__ import annotations

import tensorflow as tf

# kernel radius in sigmas: scipy.ndimage.gaussian_filter's default `truncate` (what PAIR's BlurIG uses)
TRUNCATE = 4.0


def blur_matrices(sigmas, size: int) -> tf.Tensor:
    """(S, size, size) float64 matrices ``G[s, i, j] = w_s(i - j)``; identity where sigma == 0."""
    sigmas = tf.reshape(tf.cast(sigmas, tf.float64), (-1, 1, 1))
    idx = tf.range(size, dtype=tf.float64)
    dist = idx[:, None] - idx[None, :]
    radius = tf.floor(TRUNCATE * sigmas + 0.5)
    safe = tf.where(sigmas > 0, sigmas, tf.ones_like(sigmas))
    # the normaliser runs over the whole truncated kernel, not only its part inside the image
    k = tf.range(-tf.reduce_max(radius), tf.reduce_max(radius) + 1, dtype=tf.float64)[None, None, :]
    norm = tf.reduce_sum(tf.where(tf.abs(k) <= radius, tf.exp(-0.5 * (k / safe) ** 2), 0.0), -1, keepdims=True)
    weights = tf.where(tf.abs(dist) <= radius, tf.exp(-0.5 * (dist / safe) ** 2), 0.0) / norm
    eye = tf.eye(size, dtype=tf.float64)[None]
    return tf.where(sigmas > 0, weights, eye)


def gaussian_blur(images, sigma) -> tf.Tensor:
    """Blur (N,H,W,C) float32 images over H and W; ``sigma`` is a scalar or one value per image.

    Like scipy, each axis is filtered in float64 and rounded to float32 before the next, so results
    match ``gaussian_filter`` on float32 images to the last bit in almost every pixel (BlurIG's
    finite-difference step amplifies any rounding difference by ``1 / grad_step``).
    """
    images = tf.convert_to_tensor(images, tf.float32)
    n, h, w = tf.shape(images)[0], images.shape[1], images.shape[2]
    sigma = tf.broadcast_to(tf.reshape(tf.cast(sigma, tf.float64), (-1,)), (n,))
    gh = blur_matrices(sigma, h)
    gw = gh if h == w else blur_matrices(sigma, w)
    out = tf.cast(tf.einsum("nij,njwc->niwc", gh, tf.cast(images, tf.float64)), tf.float32)
    return tf.cast(tf.einsum("nkw,niwc->nikc", gw, tf.cast(out, tf.float64)), tf.float32)
