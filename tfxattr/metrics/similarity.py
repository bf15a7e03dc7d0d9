"""How alike two attributions are, per image: what the sanity checks (:mod:`.sanity`) measure between the
original explanation and the one of a changed model.

Adebayo et al., "Sanity checks for saliency maps" (NeurIPS 2018), Sec. 3.1: Spearman rank correlation of
the signed map and of the absolute map, and SSIM of the absolute maps. Here the signed map is the
channel sum, the absolute map the channel sum of |a| (:func:`tfxattr.reduction.reduce_channels`), and SSIM
runs on each map min-max scaled to [0, 1].
"""
from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from ..reduction import reduce_channels

#: tf.image.ssim's default window (shrunk for maps smaller than it)
SSIM_FILTER_SIZE = 11


def spearman(a, b) -> np.ndarray:
    """Per-image Spearman rank correlation of (N, ...) arrays; 1 for identical maps, 0 if one is constant."""
    a, b = np.asarray(a).reshape(len(a), -1), np.asarray(b).reshape(len(b), -1)
    out = np.empty(len(a))
    for i, (x, y) in enumerate(zip(a, b)):
        if np.array_equal(x, y):
            out[i] = 1.0
        elif np.ptp(x) == 0 or np.ptp(y) == 0:
            out[i] = 0.0
        else:
            out[i] = spearmanr(x, y).statistic
    return out


def ssim(a, b) -> np.ndarray:
    """Per-image SSIM of (N, H, W) maps, each min-max scaled to [0, 1] (constant map -> zeros)."""
    import tensorflow as tf

    def unit(m):
        m = np.asarray(m, np.float32)
        lo = m.min(axis=(1, 2), keepdims=True)
        span = m.max(axis=(1, 2), keepdims=True) - lo
        return np.where(span > 0, (m - lo) / np.where(span > 0, span, 1.0), 0.0)[..., None]
    size = int(min(SSIM_FILTER_SIZE, a.shape[1], a.shape[2]))
    return tf.image.ssim(unit(a), unit(b), max_val=1.0, filter_size=size).numpy().astype(np.float64)


def similarity(reference, attribution) -> dict:
    """Per-image ``spearman`` (signed map), ``spearman_abs`` and ``ssim`` (abs maps) of two (N,H,W,C)."""
    ref_abs, att_abs = reduce_channels(reference, "sum_abs"), reduce_channels(attribution, "sum_abs")
    return {"spearman": spearman(reduce_channels(reference, "sum"), reduce_channels(attribution, "sum")),
            "spearman_abs": spearman(ref_abs, att_abs), "ssim": ssim(ref_abs, att_abs)}
