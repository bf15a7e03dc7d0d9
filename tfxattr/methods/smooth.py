"""SmoothGrad (Smilkov et al., 2017) around any method: average over noisy copies of each image."""
from __future__ import annotations

import numpy as np

SMOOTH_DEFAULTS = {"samples": 25, "noise": 0.15, "magnitude": False}


def smooth_options(smooth) -> dict:
    """``smooth``: True, an int (samples) or a dict with samples / noise / magnitude."""
    if smooth is True:
        opts = dict(SMOOTH_DEFAULTS)
    elif isinstance(smooth, (int, np.integer)) and not isinstance(smooth, bool):
        opts = {**SMOOTH_DEFAULTS, "samples": int(smooth)}
    elif isinstance(smooth, dict):
        unknown = sorted(set(smooth) - set(SMOOTH_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown smooth option(s) {unknown}; valid: {sorted(SMOOTH_DEFAULTS)}")
        opts = {**SMOOTH_DEFAULTS, **smooth}
    else:
        raise ValueError(f"smooth must be True, a number of samples or a dict, got {smooth!r}")
    if not isinstance(opts["samples"], (int, np.integer)) or opts["samples"] < 1:
        raise ValueError(f"smooth samples must be a positive integer, got {opts['samples']!r}")
    if not np.isfinite(opts["noise"]) or opts["noise"] < 0:
        raise ValueError(f"smooth noise must be a non-negative number, got {opts['noise']!r}")
    return opts


def smooth_attribute(method, adapter, images, targets, opts, seed=None, progress=False):
    """Run ``method`` once on all noisy copies (one batch of N*samples images), then average.

    Noise std is ``noise * (max - min)`` of each image, as in PAIR's ``GetSmoothedMask``;
    ``magnitude=True`` averages squared attributions.
    """
    rng = np.random.default_rng(seed)
    n, s = len(images), int(opts["samples"])
    spread = images.reshape(n, -1).max(1) - images.reshape(n, -1).min(1)
    std = (opts["noise"] * spread).astype(np.float32)[:, None, None, None, None]
    noisy = images[:, None] + rng.normal(size=(n, s) + images.shape[1:]).astype(np.float32) * std
    flat = noisy.reshape((n * s,) + images.shape[1:])
    attr = method.attribute(adapter, flat, np.repeat(targets, s), progress=progress, seed=seed)
    attr = attr.reshape((n, s) + attr.shape[1:])
    if opts["magnitude"]:
        attr = attr * attr
    return attr.mean(1).astype(np.float32)
