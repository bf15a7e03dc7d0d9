"""Geometrically Guided Integrated Gradients (Rahman, Lewis, Plis; Algorithm 1).

From each of ``points`` points ``b + k/(points-1) (x - b)`` on the straight line, take
``ascent_steps`` steps of gradient ascent on the class score, ``x <- x + lr * grad``, recording the
gradient before every step; the attribution is the per-feature (signed, per-channel) maximum of all
recorded gradients. No ``(x - b)`` factor (Sec. 3). ``lr`` acts on the images as given (pixel
space here); the paper's ImageNet preset ``ggig_paper`` (51 points, 100 steps, lr 1e-4) is applied
literally. All (image, point) pairs ascend together in chunks of ``batch_size``.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..aggregate import Accumulator, MaxGradient
from ..engine import _chunked, _pairs
from ..progress import progress_bar
from ..checks import positive_float, positive_int
from .base import Method


class GGIG(Method):
    name = "ggig"
    summary = "Geometrically Guided IG: per-pixel max of gradients during ascent from points on the line"
    defaults = {"points": 20, "ascent_steps": 10, "lr": 1e-4, "baseline": "black", "blur_sigma": 20.0}

    def validate(self):
        positive_int(self.options["points"], "points")
        positive_int(self.options["ascent_steps"], "ascent_steps")
        positive_float(self.options["lr"], "lr", allow_zero=True)

    def attribute(self, adapter, images, targets, progress=False, seed=None):
        o = self.options
        baselines = tf.constant(self.baselines(adapter, images))
        x_all = tf.constant(images)
        alphas = np.linspace(0.0, 1.0, o["points"]) if o["points"] > 1 else np.ones(1)
        pairs = _pairs(len(images), np.arange(o["points"]))
        acc = Accumulator(MaxGradient(), len(images), images.shape[1:], 0)
        bs = adapter.batch_size
        with progress_bar(-(-len(pairs) // bs) * o["ascent_steps"], self.name, progress) as bar:
            for img, pid in _chunked(pairs, bs):
                x, b = tf.gather(x_all, img), tf.gather(baselines, img)
                a = tf.constant(alphas[pid], tf.float32)[:, None, None, None]
                point = b + a * (x - b)
                for _ in range(o["ascent_steps"]):
                    _, g = adapter.values_and_gradients(point, targets[img])
                    acc.add_segments(img, pid, g)
                    point = point + o["lr"] * g
                    bar.update(1)
        return acc.finish()
