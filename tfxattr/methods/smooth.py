"""SmoothGrad (Smilkov et al., 2017, Eq. 3) around any registered method, as a method of its own.

``explain(model, x, "smooth", inner="ig+idgi", samples=10)``; in specs
``smooth:inner=ig+idgi,samples=10``; ``explain(..., smooth=...)`` is a shortcut that builds it.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..batching import as_rows, chunk_map, count, finish, opened, rows
from ..checks import boolean, known_keys, positive_float, positive_int
from ..progress import progress_bar
from .base import Wrapper

SMOOTH_DEFAULTS = {"samples": 25, "noise": 0.15, "magnitude": False}  # PAIR's GetSmoothedMask defaults


class SmoothGrad(Wrapper):
    """Mean of the wrapped ``inner`` method's attributions over ``samples`` noisy copies ``x + N(0, sigma^2)``
    with ``sigma = noise * (max(x) - min(x))`` per image, as PAIR's ``GetSmoothedMask``;
    ``magnitude=True`` averages squared attributions. Noisy copies go through the wrapped method in
    groups of about ``batch_size`` rows, so memory does not grow with ``samples``. The noise of an
    image depends on ``seed`` and the image itself, never on its place in the batch."""
    name = "smooth"
    summary = "SmoothGrad around any method (inner=<method>, inner_options, samples, noise, magnitude)"
    defaults = {**Wrapper.defaults, "inner": "gradient", **SMOOTH_DEFAULTS}

    def validate(self):
        super().validate()
        o = self.options
        positive_int(o["samples"], "samples")
        positive_float(o["noise"], "noise", allow_zero=True)
        boolean(o["magnitude"], "magnitude")

    def export_refusal(self) -> str:
        wrapped = self.wrapped()
        reason = wrapped.export_refusal()
        return f"its wrapped method {wrapped.name!r} cannot be exported: {reason}" if reason else ""

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        base, samples = self.wrapped(), self.options["samples"]
        noise, magnitude = self.options["noise"], self.options["magnitude"]
        if seed is None:  # fresh entropy, drawn once in Python (traced: fixed when the graph is built)
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        x, t = as_rows(images, targets)
        per_call = max(1, evaluator.batch_size // samples)  # images whose noisy copies fill about one batch

        def chunk(x, t):
            noisy = noisy_copies(x, samples, noise, seed)
            flat = tf.reshape(noisy, tf.concat([[-1], tf.shape(x)[1:]], 0))
            a = tf.convert_to_tensor(base.attribute(evaluator, opened(flat), opened(tf.repeat(t, samples)),
                                                    seed=seed), tf.float32)
            a = tf.reshape(a, tf.concat([[tf.shape(x)[0], samples], tf.shape(a)[1:]], 0))
            a = tf.cast(a * a if magnitude else a, tf.float64)
            return (tf.cast(tf.reduce_mean(a, 1), tf.float32),)

        n = rows(x)
        with progress_bar(count(n, per_call) if tf.executing_eagerly() else 0, self.name, progress) as bar:
            (out,) = chunk_map(chunk, [tf.float32], n, per_call, x, t, bar=bar)
        return finish(out)


def noise_seeds(images, seed: int):
    """(N, 2) int64 stateless seeds: ``seed`` and a fingerprint of each image's bytes, so an image's noise
    does not depend on its place in the batch, nor on the door (explain() and an exported model agree)."""
    fp = tf.reshape(tf.bitcast(tf.fingerprint(images), tf.int64), [-1])  # 8 bytes per image -> one int64
    return tf.stack([tf.fill(tf.shape(fp), tf.constant(int(seed), tf.int64)), fp], 1)


def noisy_copies(images, samples: int, noise: float, seed: int):
    """(N, samples, H, W, C): ``x + N(0, sigma^2)`` with ``sigma = noise (max(x) - min(x))`` per image
    (Smilkov et al. 2017, Eq. 3; PAIR's ``GetSmoothedMask``), stateless normal noise from :func:`noise_seeds`."""
    flat = tf.reshape(images, [tf.shape(images)[0], -1])
    std = tf.constant(noise, tf.float32) * (tf.reduce_max(flat, 1) - tf.reduce_min(flat, 1))
    shape = tf.concat([[samples], tf.shape(images)[1:]], 0)
    normal = tf.map_fn(lambda s: tf.random.stateless_normal(shape, s, dtype=tf.float32), noise_seeds(images, seed),
                       fn_output_signature=tf.float32)
    return images[:, None] + normal * tf.reshape(std, [-1, 1, 1, 1, 1])


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
