"""RISE (Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box Models",
BMVC 2018, Eq. 6 and Sec. 3.2).

Black-box: only ``f_c`` values are used. ``samples`` random masks ``M_i`` (Sec. 3.2): a ``grid`` x
``grid`` binary grid, each cell kept with probability ``keep`` (the paper's p), upsampled bilinearly
to ``(grid + 1)`` cells of ``ceil(H / grid)`` pixels and cropped at a random shift, so masks are
smooth. The saliency (Eq. 6) is the Monte-Carlo estimate

    S(x) = 1 / (N p) sum_i f_c(b + M_i (x - b)) M_i

with ``b`` the black image (the paper's ``x o M``, in pixel space). The paper explains the class
probability: pass ``output="probability"`` for its setting (the default scalar is the logit, as for
every method). Masks come from ``seed`` in fixed blocks of :data:`MASK_BLOCK`, so they do not depend
on ``batch_size`` or on how many images are explained; masked images run in chunks of
``batch_size`` rows. Attributions are (N, H, W, 1).
"""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from ..batching import pairs, spans
from ..checks import number, positive_int
from .base import Method

# masks are drawn (and held in memory) this many at a time, each block from its own seed
MASK_BLOCK = 128


class RISE(Method):
    name = "rise"
    summary = "RISE (Petsiuk et al. 2018): score-weighted mean of random smooth masks (black-box, seeded)"
    # the paper's ImageNet setting: N = 4000 masks of a 7 x 7 grid, p = 0.5
    defaults = {"samples": 4000, "grid": 7, "keep": 0.5}

    def validate(self):
        positive_int(self.options["samples"], "samples")
        positive_int(self.options["grid"], "grid")
        keep = number(self.options["keep"], "keep", 0.0, 1.0)
        if keep == 0.0:
            raise ValueError("keep must be in (0, 1], got 0 (every mask would be empty)")

    def masks(self, block: int, size, seed) -> np.ndarray:
        """The masks (m, H, W) of block ``block`` (``seed`` None: drawn from fresh entropy)."""
        h, w = size
        grid, keep = self.options["grid"], float(self.options["keep"])
        count = min(MASK_BLOCK, self.options["samples"] - block * MASK_BLOCK)
        rng = np.random.default_rng(None if seed is None else [int(seed), block])
        cells = (rng.random((count, grid, grid)) < keep).astype(np.float32)
        ch, cw = math.ceil(h / grid), math.ceil(w / grid)
        up = tf.image.resize(cells[..., None], ((grid + 1) * ch, (grid + 1) * cw), method="bilinear").numpy()
        dy, dx = rng.integers(0, ch, count), rng.integers(0, cw, count)
        return np.stack([up[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w, 0] for i in range(count)])

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        n, h, w = images.shape[:3]
        lo = float(evaluator.pixel_range[0])
        if seed is None:  # one fresh seed for all blocks of this call
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        total = np.zeros((n, h, w), np.float64)
        for block in range(math.ceil(self.options["samples"] / MASK_BLOCK)):
            masks = self.masks(block, (h, w), seed)
            rows = pairs(n, np.arange(len(masks)))
            for span in spans(len(rows), evaluator.batch_size):
                img, m = rows[span, 0], masks[rows[span, 1]]
                scores = np.asarray(evaluator.values(lo + m[..., None] * (images[img] - lo), targets[img]), np.float64)
                for i in np.unique(img):  # sum_i f(x o M_i) M_i as one matrix product per image
                    total[i] += np.tensordot(scores[img == i], m[img == i], axes=1)
        total /= self.options["samples"] * float(self.options["keep"])
        return total[..., None].astype(np.float32)
