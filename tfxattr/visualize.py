"""Heatmaps people can look at: channel reduction, percentile scaling, a colormap and an overlay."""
from __future__ import annotations

import numpy as np

REDUCTIONS = ("sum_abs", "abs_sum", "sum", "positive", "max_abs")

# inferno-like ramp (black -> purple -> red -> yellow -> white), interpolated linearly
_STOPS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], np.float32)


def reduce_channels(attribution: np.ndarray, mode: str = "sum_abs") -> np.ndarray:
    """(..., H, W, C) -> (..., H, W). ``sum_abs``: sum of |a| over channels (PAIR's grayscale map)."""
    a = np.asarray(attribution, np.float32)
    if mode == "sum_abs":
        return np.abs(a).sum(-1)
    if mode == "abs_sum":
        return np.abs(a.sum(-1))
    if mode == "sum":
        return a.sum(-1)
    if mode == "positive":
        return np.clip(a.sum(-1), 0, None)
    if mode == "max_abs":
        return np.abs(a).max(-1)
    raise ValueError(f"reduce must be one of {REDUCTIONS}, got {mode!r}")


def normalize(heatmap: np.ndarray, percentile: float = 99.0) -> np.ndarray:
    """Scale a non-negative (H, W) map to [0, 1], clipping at ``percentile``."""
    h = np.asarray(heatmap, np.float32)
    h = h - min(0.0, float(h.min()))
    top = float(np.percentile(h, percentile)) if h.size else 0.0
    if top <= 0:
        top = float(h.max()) or 1.0
    return np.clip(h / top, 0.0, 1.0)


def colorize(values01: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to uint8 RGB."""
    v = np.clip(values01, 0, 1) * (len(_STOPS) - 1)
    lo = np.floor(v).astype(int).clip(0, len(_STOPS) - 2)
    t = (v - lo)[..., None]
    return (_STOPS[lo] * (1 - t) + _STOPS[lo + 1] * t).round().astype(np.uint8)


def to_uint8_image(image: np.ndarray, pixel_range=(0.0, 255.0)) -> np.ndarray:
    img = np.asarray(image, np.float32)
    lo, hi = pixel_range
    img = (img - lo) / max(hi - lo, 1e-12) * 255.0
    img = np.clip(img, 0, 255).astype(np.uint8)
    return np.repeat(img, 3, -1) if img.shape[-1] == 1 else img[..., :3]


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5, pixel_range=(0.0, 255.0),
            percentile: float = 99.0) -> np.ndarray:
    """Blend the coloured heatmap over the (dimmed) image; uint8 (H, W, 3)."""
    base = to_uint8_image(image, pixel_range).astype(np.float32)
    h = normalize(heatmap, percentile)
    color = colorize(h).astype(np.float32)
    weight = alpha * h[..., None] ** 0.5
    return (base * (1 - weight) + color * weight).clip(0, 255).astype(np.uint8)


def panel(image, heatmap, title: str = "", pixel_range=(0.0, 255.0), scale: int = 1) -> np.ndarray:
    """Image | heatmap | overlay side by side, uint8; ``scale`` enlarges small images."""
    parts = [to_uint8_image(image, pixel_range), colorize(normalize(heatmap)),
             overlay(image, heatmap, pixel_range=pixel_range)]
    gap = np.full((parts[0].shape[0], 4, 3), 255, np.uint8)
    out = np.concatenate([parts[0], gap, parts[1], gap, parts[2]], 1)
    if scale > 1:
        out = np.kron(out, np.ones((scale, scale, 1), np.uint8))
    return out
