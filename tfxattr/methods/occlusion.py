"""Occlusion (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014, Sec. 4.2).

Black-box: only ``f_c`` values of the model are used (SavedModels and callables work too). A patch
of ``patch`` pixels slides over the image with ``stride``; inside it the image is replaced by the
``baseline`` (all channels at once), and every pixel of the patch gets the score drop
``f_c(x) - f_c(x with the patch occluded)``. A pixel covered by several patches gets their mean
(Captum's rule; Xplique sums them, which equals ours when ``stride >= patch``). Patches start every
``stride`` pixels and one more is added flush with the far edge, so every pixel is covered: a patch
the size of the image gives ``f_c(x) - f_c(baseline)`` everywhere. The occluded images run in chunks
of ``batch_size`` rows. Attributions are (N, H, W, 1).
"""
from __future__ import annotations

import numpy as np

from ..batching import pairs, spans
from ..checks import positive_int
from .base import Method


class Occlusion(Method):
    name = "occlusion"
    summary = "Occlusion (Zeiler & Fergus 2014): score drop when a sliding patch is set to the baseline (black-box)"
    # 8 x 8 patches every 4 pixels: a 224 x 224 image takes 55 x 55 = 3,025 forward passes
    defaults = {"patch": 8, "stride": 4, "baseline": "black"}

    def validate(self):
        for key in ("patch", "stride"):
            v = self.options[key]
            if isinstance(v, (tuple, list)):
                if len(v) != 2:
                    raise ValueError(f"{key} must be an int or (height, width), got {v!r}")
                for part in v:
                    positive_int(part, key)
            else:
                positive_int(v, key)
        if any(s > p for p, s in zip(_pair(self.options["patch"]), _pair(self.options["stride"]))):
            raise ValueError(f"stride {self.options['stride']!r} is larger than patch {self.options['patch']!r}: "
                             "pixels between the patches would get no attribution")

    def patches(self, height: int, width: int) -> np.ndarray:
        """(P, 4) patches ``(top, left, bottom, right)`` covering every pixel of an ``height x width`` image."""
        (ph, pw), (sh, sw) = (_pair(self.options[k]) for k in ("patch", "stride"))
        if ph > height or pw > width:
            raise ValueError(f"patch {(ph, pw)} is larger than the images ({height}, {width})")
        tops, lefts = _starts(height, ph, sh), _starts(width, pw, sw)
        t, left = np.meshgrid(tops, lefts, indexing="ij")
        t, left = t.reshape(-1), left.reshape(-1)
        return np.stack([t, left, t + ph, left + pw], 1)

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        n, h, w = images.shape[:3]
        boxes = self.patches(h, w)
        baselines = self.baselines(evaluator, images)
        full = np.asarray(evaluator.values(images, targets), np.float32)
        total = np.zeros((n, h, w), np.float64)
        covered = np.zeros((h, w), np.float64)
        for top, left, bottom, right in boxes:
            covered[top:bottom, left:right] += 1
        rows = pairs(n, np.arange(len(boxes)))
        for span in spans(len(rows), evaluator.batch_size):
            img, box = rows[span, 0], boxes[rows[span, 1]]
            x = images[img].copy()
            for i, (top, left, bottom, right) in enumerate(box):
                x[i, top:bottom, left:right] = baselines[img[i], top:bottom, left:right]
            drop = full[img] - np.asarray(evaluator.values(x, targets[img]), np.float32)
            for i, (top, left, bottom, right) in enumerate(box):
                total[img[i], top:bottom, left:right] += drop[i]
        return (total / covered)[..., None].astype(np.float32)


def _pair(v):
    return tuple(int(p) for p in v) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _starts(size: int, patch: int, stride: int) -> np.ndarray:
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return np.asarray(starts)
