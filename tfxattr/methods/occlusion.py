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
import tensorflow as tf

from ..batching import as_rows, chunk_loop, chunk_map, finish, rows
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
        x, t = as_rows(images, targets)
        h, w = x.shape[1:3]
        boxes = tf.constant(self.patches(h, w), tf.int32)
        n_boxes = int(boxes.shape[0])
        covered = tf.constant(coverage(self.patches(h, w), h, w), tf.float64)
        baselines = tf.convert_to_tensor(self.baselines(evaluator, images), tf.float32)
        batch = evaluator.batch_size

        def chunk(x, t, b):  # a chunk of images: their (image, patch) rows in chunks of batch_size
            full = evaluator.values(x, t)
            n = rows(x)
            img, patch = tf.repeat(tf.range(n), n_boxes), tf.tile(tf.range(n_boxes), [n])

            def body(start, stop, total):
                i, m = img[start:stop], patch_masks(tf.gather(boxes, patch[start:stop]), h, w)[..., None]
                occluded = tf.gather(x, i) * (1.0 - m) + tf.gather(b, i) * m
                drop = tf.gather(full, i) - evaluator.values(occluded, tf.gather(t, i))
                return (tf.tensor_scatter_nd_add(total, i[:, None], tf.cast(drop[:, None, None] * m[..., 0],
                                                                             tf.float64)),)
            (total,) = chunk_loop(n * n_boxes, batch, body, (tf.zeros(tf.stack([n, h, w]), tf.float64),))
            return (tf.cast(total / covered, tf.float32)[..., None],)

        (out,) = chunk_map(chunk, [tf.float32], rows(x), batch, x, t, baselines)
        return finish(out)


def coverage(boxes, height: int, width: int) -> np.ndarray:
    """(H, W) how many of the patches ``boxes`` cover each pixel."""
    covered = np.zeros((height, width), np.float64)
    for top, left, bottom, right in boxes:
        covered[top:bottom, left:right] += 1
    return covered


def patch_masks(boxes, height: int, width: int):
    """(rows, 4) boxes ``(top, left, bottom, right)`` -> (rows, H, W) float32 masks, 1 inside the box."""
    r, c = tf.range(height)[None, :, None], tf.range(width)[None, None, :]
    inside = (r >= boxes[:, 0, None, None]) & (r < boxes[:, 2, None, None]) \
        & (c >= boxes[:, 1, None, None]) & (c < boxes[:, 3, None, None])
    return tf.cast(inside, tf.float32)


def _pair(v):
    return tuple(int(p) for p in v) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _starts(size: int, patch: int, stride: int) -> np.ndarray:
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return np.asarray(starts)
