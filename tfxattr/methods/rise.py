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

One implementation for every door: the random draws (kept cells and shifts, a few bytes per mask) are
made in NumPy from ``seed`` alone, the masks are built from them by TensorFlow ops, block by block. An
exported model (traced with the export's seed) holds only the draws and uses explain()'s masks for that seed.
"""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from ..batching import as_rows, chunk_loop, finish, rows, step_loop
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

    def draws(self, block: int, size, seed):
        """The random draws of block ``block``: kept cells (m, grid, grid) float32 and shifts (m,) ``dy``, ``dx``,
        from ``seed`` alone (NumPy, in Python: constants of the graph when traced, a few bytes per mask)."""
        h, w = size
        grid, keep = self.options["grid"], float(self.options["keep"])
        count = min(MASK_BLOCK, self.options["samples"] - block * MASK_BLOCK)
        rng = np.random.default_rng(None if seed is None else [int(seed), block])
        cells = (rng.random((count, grid, grid)) < keep).astype(np.float32)
        dy, dx = rng.integers(0, math.ceil(h / grid), count), rng.integers(0, math.ceil(w / grid), count)
        return cells, dy, dx

    def masks(self, block: int, size, seed) -> np.ndarray:
        """The masks (m, H, W) of block ``block`` (``seed`` None: drawn from fresh entropy)."""
        cells, dy, dx = self.draws(block, size, seed)
        return smooth_masks(tf.constant(cells), tf.constant(dy, tf.int32), tf.constant(dx, tf.int32), size).numpy()

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        x, t = as_rows(images, targets)
        h, w = x.shape[1:3]
        n = rows(x)
        lo = float(evaluator.pixel_range[0])
        if seed is None:  # one fresh seed for all blocks of this call (traced: fixed when the graph is built)
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        blocks = [self.draws(b, (h, w), seed) for b in range(math.ceil(self.options["samples"] / MASK_BLOCK))]
        cells, dy, dx = (tf.constant(np.concatenate(d)) for d in zip(*blocks))
        dy, dx = tf.cast(dy, tf.int32), tf.cast(dx, tf.int32)
        samples = self.options["samples"]

        def block(k, total):  # the masks of block k (memory: MASK_BLOCK masks), their (image, mask) rows in chunks
            first = k * MASK_BLOCK
            last = tf.minimum(first + MASK_BLOCK, samples)
            masks = smooth_masks(cells[first:last], dy[first:last], dx[first:last], (h, w))
            m = last - first
            img, mask = tf.repeat(tf.range(n), m), tf.tile(tf.range(m), tf.stack([n]))

            def body(start, stop, total):
                i, mk = img[start:stop], tf.gather(masks, mask[start:stop])
                scores = evaluator.values(lo + mk[..., None] * (tf.gather(x, i) - lo), tf.gather(t, i))
                weighted = tf.cast(scores, tf.float64)[:, None, None] * tf.cast(mk, tf.float64)
                return (tf.tensor_scatter_nd_add(total, i[:, None], weighted),)
            return chunk_loop(n * m, evaluator.batch_size, body, (total,))

        (total,) = step_loop(len(blocks), block, (tf.zeros(tf.stack([n, h, w]), tf.float64),))
        total /= samples * float(self.options["keep"])
        return finish(total[..., None])


def smooth_masks(cells, dy, dx, size):
    """RISE's masks (m, H, W): the (m, grid, grid) ``cells`` upsampled bilinearly to ``(grid + 1)`` cells of
    ``ceil(H / grid)`` pixels and cropped at the shifts ``dy``, ``dx`` (m,)."""
    h, w = size
    grid = cells.shape[-1]
    ch, cw = math.ceil(h / grid), math.ceil(w / grid)
    up = tf.image.resize(cells[..., None], ((grid + 1) * ch, (grid + 1) * cw), method="bilinear")[..., 0]
    rows_ = tf.gather(up, dy[:, None] + tf.range(h)[None], axis=1, batch_dims=1)
    return tf.gather(rows_, dx[:, None] + tf.range(w)[None], axis=2, batch_dims=1)
