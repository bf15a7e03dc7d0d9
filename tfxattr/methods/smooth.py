"""SmoothGrad (Smilkov et al., 2017, Eq. 3) around any registered method, as a method of its own.

``explain(model, x, method="smooth", base="ig+idgi", samples=10)``; in specs
``smooth:base=ig+idgi,samples=10``; ``explain(..., smooth=...)`` is a shortcut that builds it.
"""
from __future__ import annotations

import zlib

import numpy as np

from ..batching import chunks, count
from ..checks import boolean, known_keys, positive_float, positive_int
from ..progress import progress_bar
from .base import Method, get_method

SMOOTH_DEFAULTS = {"samples": 25, "noise": 0.15, "magnitude": False}  # PAIR's GetSmoothedMask defaults


class SmoothGrad(Method):
    """Mean of the ``base`` method's attributions over ``samples`` noisy copies ``x + N(0, sigma^2)``
    with ``sigma = noise * (max(x) - min(x))`` per image, as PAIR's ``GetSmoothedMask``;
    ``magnitude=True`` averages squared attributions. Noisy copies go through the base method in
    groups of about ``batch_size`` rows, so memory does not grow with ``samples``. The noise of an
    image depends on ``seed`` and the image itself, never on its place in the batch."""
    name = "smooth"
    summary = "SmoothGrad around any method (base=<method>, base_options, samples, noise, magnitude)"
    defaults = {"base": "gradient", "base_options": None, **SMOOTH_DEFAULTS}

    def validate(self):
        o = self.options
        base = o["base"]
        if isinstance(base, str) and base.lower() == self.name:
            raise ValueError("base must be another method than 'smooth'")
        if o["base_options"] is not None and not isinstance(o["base_options"], dict):
            raise ValueError(f"base_options must be a dict of options for {base!r} or None, got {o['base_options']!r}")
        if isinstance(base, Method) and o["base_options"]:
            raise ValueError("base_options cannot be given together with a Method instance as base")
        self.base_method()  # an unknown base or bad base options fail here
        positive_int(o["samples"], "samples")
        positive_float(o["noise"], "noise", allow_zero=True)
        boolean(o["magnitude"], "magnitude")

    def base_method(self) -> Method:
        return get_method(self.options["base"], **(self.options["base_options"] or {}))

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        base, samples = self.base_method(), self.options["samples"]
        per_call = max(1, evaluator.batch_size // samples)  # images whose noisy copies fill about one batch
        rows = np.arange(len(images))
        out = []
        with progress_bar(count(len(images), per_call), self.name, progress) as bar:
            for idx in chunks(rows, per_call):
                x = images[idx]
                spread = x.reshape(len(x), -1).max(1) - x.reshape(len(x), -1).min(1)
                std = (self.options["noise"] * spread).astype(np.float32)[:, None, None, None, None]
                noise = np.stack([_noise(image, samples, seed) for image in x])
                noisy = x[:, None] + noise * std
                flat = noisy.reshape((len(x) * samples,) + x.shape[1:])
                attr = np.asarray(base.attribute(evaluator, flat, np.repeat(targets[idx], samples), seed=seed))
                attr = attr.reshape((len(x), samples) + attr.shape[1:])
                out.append((attr * attr if self.options["magnitude"] else attr).mean(1))
                bar.update(1)
        return np.concatenate(out).astype(np.float32)


def _noise(image: np.ndarray, samples: int, seed) -> np.ndarray:
    """Standard normal noise (samples, H, W, C) for ``image``, from ``seed`` and the image's bytes
    (``seed=None``: fresh entropy)."""
    key = None if seed is None else [int(seed), zlib.crc32(np.ascontiguousarray(image).tobytes())]
    return np.random.default_rng(key).normal(size=(samples,) + image.shape).astype(np.float32)


def smooth_options(smooth) -> dict:
    """The ``smooth=`` shortcut of ``explain``: True, a number of samples, or a dict of SmoothGrad options."""
    if smooth is True:
        return {}
    if isinstance(smooth, (int, np.integer)) and not isinstance(smooth, bool):
        return {"samples": int(smooth)}
    if isinstance(smooth, dict):
        known_keys(smooth, SMOOTH_DEFAULTS, "smooth option")
        return dict(smooth)
    raise ValueError(f"smooth must be True, a number of samples or a dict of {sorted(SMOOTH_DEFAULTS)}, got {smooth!r}")
