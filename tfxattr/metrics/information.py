"""Information levels of SIC/AIC's images: the lossless WebP size (XRAI, PAIR's ``estimate_image_entropy``),
MS-SSIM to the original (IDGI Sec. 4.5) or the grey-level Shannon entropy (GGIG Sec. 5)."""
from __future__ import annotations

import io

import numpy as np

from .bokeh import pil_array

#: what ``information=`` may name
INFORMATION = ("webp", "msssim", "entropy")
#: tf.image.ssim_multiscale's default weights of its 5 scales (Wang et al. 2003).
MSSSIM_POWER_FACTORS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: tf.image.ssim_multiscale's default Gaussian window (pixels)
MSSSIM_FILTER_SIZE = 11


def information_levels(originals, stacks, information) -> np.ndarray:
    """(G, T+2): the information of each original, then of its baseline and threshold images."""
    if information == "msssim":
        return np.stack([msssim_to(o, s) for o, s in zip(originals, stacks)])
    measure = webp_size if information == "webp" else gray_entropy
    out = []
    for original, stack in zip(originals, stacks):
        level = measure(original)
        out.append([level] + [level if np.array_equal(b, original) else measure(b) for b in stack])
    return np.array(out, np.float64)


def webp_size(img) -> int:
    """Bytes of the lossless WebP encoding (PAIR's ``estimate_image_entropy``)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pil_array(img)).save(buffer, format="webp", lossless=True, quality=100)
    return buffer.tell()


def gray_entropy(img) -> float:
    """Shannon entropy (bits) of the 8-bit grey histogram (GGIG Sec. 5's information level)."""
    from PIL import Image

    hist = np.asarray(Image.fromarray(pil_array(img)).convert("L").histogram(), np.float64)
    p = hist[hist > 0] / hist.sum()
    return float(-(p * np.log2(p)).sum())


def msssim_settings(height: int, width: int):
    """``(filter_size, power_factors)`` for ``tf.image.ssim_multiscale`` on images this small.

    TF needs the coarsest scale (side halved, rounding up, once per extra scale) to be at least
    ``filter_size`` (11) wide: 5 scales need >= 161 px, so 64 px images get 3 scales (64, 32, 16). With
    fewer than 5 scales the first k default weights are kept and renormalised to sum to 1; images
    narrower than 11 px use one scale with a filter as wide as the image.
    """
    side = min(height, width)
    for scales in range(len(MSSSIM_POWER_FACTORS), 0, -1):
        coarsest = side
        for _ in range(scales - 1):
            coarsest = -(-coarsest // 2)
        if coarsest >= MSSSIM_FILTER_SIZE:
            break
    filter_size = min(MSSSIM_FILTER_SIZE, side)
    if scales == len(MSSSIM_POWER_FACTORS):
        return filter_size, MSSSIM_POWER_FACTORS  # TF's defaults, unchanged
    weights = np.asarray(MSSSIM_POWER_FACTORS[:scales])
    return filter_size, tuple((weights / weights.sum()).tolist())


def msssim_to(original, stack) -> np.ndarray:
    """MS-SSIM (max_val 255) of the original and of each image in ``stack`` to the original."""
    import tensorflow as tf

    h, w = original.shape[:2]
    filter_size, power = msssim_settings(h, w)
    imgs = tf.constant(np.concatenate([original[None], stack]), tf.float32)
    ref = tf.broadcast_to(tf.constant(original[None], tf.float32), imgs.shape)
    return tf.image.ssim_multiscale(imgs, ref, 255.0, power_factors=power, filter_size=filter_size).numpy()
