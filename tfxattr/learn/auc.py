"""Differentiable deletion and insertion AUCs (Learn to Rank, Schinagl et al. 2026, Sec. 3.1-3.2).

The map is average-pooled to a ``g x g`` grid, its cells are soft-sorted by Gumbel-Sinkhorn
(:mod:`tfxattr.learn.sort`), and the cumulative sums of the soft permutation's rows give, for each
fraction ``f`` of the curve, how much of each cell belongs to the top ``f * g^2`` cells (between two
whole cell counts the masks are interpolated linearly). Deletion blends that share of each cell toward
a reference image (black, each image's mean colour, or its blur); insertion starts from the reference and
reveals it. The target's probability along the curve, integrated by the trapezoid rule over ``f`` in
[0, 1], is the AUC. Without noise, as the temperature goes to 0 the masks become the hard top-k masks
and the AUCs those of :func:`tfxattr.metrics.deletion` / :func:`~tfxattr.metrics.insertion` on the
grid-pooled map (on the map itself when ``g`` is the image size, or the map is constant on grid cells).

The authors (github.com/dschinagl/AHA, ``pipeline/interventions.py``) compute insertion as deletion of
the least important cells first; at f = 1 - f' that curve is the insertion curve at f', so the areas
agree. Here one soft sort serves both curves.

The model runs on the curve images in chunks of ``batch_size`` (forward and backward: a custom gradient
recomputes each chunk), so memory for activations is bounded by ``batch_size``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

from ..batching import chunk_map
from ..checks import number, one_of, positive_float, positive_int
from ..inputs import resolve_baseline
from ..models import DEFAULT_BATCH_SIZE, as_model
from .sort import SINKHORN_ITERATIONS, TAU_END, gumbel_sinkhorn

#: reference images the curves blend toward (Learn to Rank samples one of the three per training step)
REFERENCES = ("black", "mean", "blur")
#: the authors' 16 mask fractions per curve (both ends included)
TRAIN_STEPS = 16
#: random grid sizes. The authors draw g in 7..28 (cells of 8-32 pixels on 224-pixel images); the soft
#: sort costs O(g^4) memory per map through 30 Sinkhorn iterations, so on a CPU 7..16 (cells of 4-9 pixels
#: on the demo's 64-pixel images), capped at the image size
GRID_RANGE = (7, 16)
#: without noise, this temperature brings the soft AUCs within 0.01-0.015 of the hard ones on the demo model
#: (measured on IG maps, 32 x 32 grid; 1e-4: within 0.019)
HARD_TEMPERATURE = 1e-6


def pool_matrix(size: int, grid) -> tf.Tensor:
    """(grid, size) adaptive average pooling along one axis (bins as ``adaptive_avg_pool``)."""
    i = tf.range(grid)
    start, end = (i * size) // grid, ((i + 1) * size + grid - 1) // grid
    h = tf.range(size)[None, :]
    inside = tf.cast((h >= start[:, None]) & (h < end[:, None]), tf.float32)
    return inside / tf.cast(end - start, tf.float32)[:, None]


def cell_matrix(size: int, grid) -> tf.Tensor:
    """(size, grid) one-hot: the grid cell of each pixel (nearest-neighbour upsampling)."""
    return tf.one_hot((tf.range(size) * grid) // size, grid, dtype=tf.float32)


def cumulative_masks(permutation: tf.Tensor, fractions) -> tf.Tensor:
    """(B, K, n): the share of each cell among the top ``f * n`` cells of the soft ``permutation``
    (B, n, n), for each of the K ``fractions``."""
    n = tf.shape(permutation)[1]
    cum = tf.concat([tf.zeros_like(permutation[:, :1]), tf.cumsum(permutation, axis=1)], axis=1)
    step = tf.constant(np.asarray(fractions, np.float32)) * tf.cast(n, tf.float32)
    lo = tf.minimum(tf.cast(tf.floor(step), tf.int32), n)
    hi = tf.minimum(lo + 1, n)
    alpha = (step - tf.cast(lo, tf.float32))[None, :, None]
    masks = tf.gather(cum, lo, axis=1) * (1.0 - alpha) + tf.gather(cum, hi, axis=1) * alpha
    return tf.clip_by_value(masks, 0.0, 1.0)


def smooth_masks(masks: tf.Tensor, sigma: float) -> tf.Tensor:
    """(M, H, W) masks blurred by a Gaussian of ``sigma`` pixels (reflected edges), as the authors
    soften the cell borders during training."""
    radius = int(np.ceil(3.0 * sigma))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    x = tf.pad(masks[..., None], [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    x = tf.nn.conv2d(x, k.reshape(-1, 1, 1, 1), 1, "VALID")
    x = tf.nn.conv2d(x, k.reshape(1, -1, 1, 1), 1, "VALID")
    return tf.clip_by_value(x[..., 0], 0.0, 1.0)


def reference_images(reference: str, images: np.ndarray, pixel_range, blur_sigma: float = 20.0) -> np.ndarray:
    """(N,H,W,C) images the curves blend toward: "black" (the low end of ``pixel_range``), "mean" (each
    image's mean colour) or "blur" (Gaussian blur of ``blur_sigma``, as the perturbation metrics)."""
    one_of(reference, "reference", REFERENCES)
    if reference == "mean":
        return np.broadcast_to(images.mean(axis=(1, 2), keepdims=True), images.shape).astype(np.float32)
    return resolve_baseline(reference, images, pixel_range, blur_sigma).astype(np.float32)


def chunked_probabilities(adapter, batch_size: int):
    """``probs(x)``: (M, classes) class probabilities of ``adapter`` on (M,H,W,C) ``x``, run in chunks
    of ``batch_size`` rows forward and backward (the backward pass recomputes each chunk)."""

    def forward(rows):
        return (adapter.objective.probabilities(adapter._raw(rows)),)

    def backward(rows, upstream):
        with tf.GradientTape() as tape:
            tape.watch(rows)
            p = forward(rows)[0]
        g = tape.gradient(p, rows, output_gradients=upstream)
        if g is None:
            raise ValueError(f"model: the probabilities of {adapter.name!r} have no gradient with respect to the "
                             "images (is it a TensorFlow/Keras model, without stop_gradient or numpy inside?); "
                             "the soft AUCs and train_explainer need a differentiable model")
        return (g,)

    @tf.custom_gradient
    def probs(x):
        n = tf.shape(x)[0]
        out = chunk_map(forward, [tf.float32], n, batch_size, x)[0]

        def grad(upstream, variables=None):
            dx = chunk_map(backward, [tf.float32], n, batch_size, x, upstream)[0]
            return (dx, [None] * len(variables or ()))
        return out, grad
    return probs


def soft_curves(probs, images, references, maps, targets, grid, fractions, temperature,
                iterations: int = SINKHORN_ITERATIONS, noise_seed=None, mask_sigma: float = 0.0):
    """(B, 2, K) soft deletion (index 0) and insertion (1) curves: the probability of ``targets`` (B,)
    on ``images`` (B,H,W,C) with the top ``fractions`` of ``maps`` (B,H,W) cells removed / revealed."""
    h, w, c = images.shape[1], images.shape[2], images.shape[3]
    k = len(fractions)
    cells = tf.einsum("gh,bhw,lw->bgl", pool_matrix(h, grid), maps, pool_matrix(w, grid))
    permutation = gumbel_sinkhorn(tf.reshape(cells, [tf.shape(maps)[0], -1]), temperature, iterations, noise_seed)
    masks = cumulative_masks(permutation, fractions)
    masks = tf.reshape(masks, [-1, k, grid, grid])
    pixels = tf.einsum("hg,bkgl,wl->bkhw", cell_matrix(h, grid), masks, cell_matrix(w, grid))
    if mask_sigma > 0:
        pixels = tf.reshape(smooth_masks(tf.reshape(pixels, [-1, h, w]), mask_sigma), [-1, k, h, w])
    m = pixels[..., None]
    x, r = images[:, None], references[:, None]
    deleted = x + m * (r - x)
    inserted = r + m * (x - r)
    batch = tf.reshape(tf.stack([deleted, inserted], axis=1), [-1, h, w, c])
    p = probs(batch)
    rows = tf.repeat(tf.convert_to_tensor(targets, tf.int32), 2 * k)
    return tf.reshape(tf.gather(p, rows, axis=1, batch_dims=1), [-1, 2, k])


def trapezoid(curves, fractions) -> tf.Tensor:
    """Area under ``curves`` (..., K) over ``fractions`` (K,) by the trapezoid rule."""
    dx = tf.constant(np.diff(np.asarray(fractions, np.float32)))
    return tf.reduce_sum(0.5 * (curves[..., 1:] + curves[..., :-1]) * dx, axis=-1)


def soft_deletion_auc(model, images, maps, targets=None, *, grid: Optional[int] = None,
                      temperature: float = TAU_END, steps: int = 21, reference: str = "black", noise: bool = False,
                      iterations: int = SINKHORN_ITERATIONS, mask_sigma: float = 0.0, blur_sigma: float = 20.0,
                      batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0) -> tf.Tensor:
    """(N,) differentiable deletion AUCs (lower is better) of ``maps`` (N,H,W) on ``images``.

    ``grid``: cells per side (None: one random size in ``GRID_RANGE`` per call, drawn from ``seed``);
    ``temperature``: of the soft sort (``HARD_TEMPERATURE`` ~ the hard metric); ``steps``: fractions
    0, 1/(steps-1), ..., 1 (21 = the 5% steps of :func:`tfxattr.metrics.deletion`); ``reference``: one
    of ``REFERENCES``; ``noise``: Gumbel noise (seeded by ``seed``); ``mask_sigma``: Gaussian softening
    of the cell borders in pixels. Gradients flow to ``maps`` when it is a watched tf.Tensor.
    """
    return _soft_auc(0, model, images, maps, targets, grid, temperature, steps, reference, noise, iterations,
                     mask_sigma, blur_sigma, batch_size, seed)


def soft_insertion_auc(model, images, maps, targets=None, *, grid: Optional[int] = None,
                       temperature: float = TAU_END, steps: int = 21, reference: str = "black", noise: bool = False,
                       iterations: int = SINKHORN_ITERATIONS, mask_sigma: float = 0.0, blur_sigma: float = 20.0,
                       batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0) -> tf.Tensor:
    """(N,) differentiable insertion AUCs (higher is better); the options of :func:`soft_deletion_auc`."""
    return _soft_auc(1, model, images, maps, targets, grid, temperature, steps, reference, noise, iterations,
                     mask_sigma, blur_sigma, batch_size, seed)


def random_grid(rng: np.random.Generator, height: int, width: int) -> int:
    """A grid size drawn uniformly from ``GRID_RANGE``, at most the image's smaller side."""
    top = min(GRID_RANGE[1], height, width)
    return int(rng.integers(min(GRID_RANGE[0], top), top + 1))


def _soft_auc(curve, model, images, maps, targets, grid, temperature, steps, reference, noise, iterations,
              mask_sigma, blur_sigma, batch_size, seed):
    positive_int(batch_size, "batch_size")
    positive_float(temperature, "temperature")
    positive_int(iterations, "iterations")
    number(mask_sigma, "mask_sigma", 0.0)
    if positive_int(steps, "steps") < 2:
        raise ValueError(f"steps must be at least 2 (the curve's two ends), got {steps}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    adapter = as_model(model, batch_size=batch_size)
    x = np.asarray(images, np.float32)
    if x.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C), got shape {x.shape}")
    n, h, w, _ = x.shape
    maps = tf.cast(maps, tf.float32)  # differentiable from any float dtype
    if maps.shape.rank == 4 and maps.shape[-1] == 1:
        maps = maps[..., 0]
    if tuple(maps.shape) != (n, h, w):
        raise ValueError(f"maps must be (N, H, W) = {(n, h, w)} (or with a trailing 1), got {tuple(maps.shape)}")
    if targets is None:
        targets = adapter.scores(x).argmax(-1)
    targets = np.broadcast_to(np.asarray(targets), (n,))
    if targets.dtype.kind not in "iu" or np.any(targets < 0) or np.any(targets >= adapter.num_classes):
        raise ValueError(f"targets must be ints in [0, {adapter.num_classes}), got {targets!r}")
    rng = np.random.default_rng(seed)
    g = random_grid(rng, h, w) if grid is None else positive_int(grid, "grid")
    if g > min(h, w):
        raise ValueError(f"grid must be at most the image size {min(h, w)}, got {g}")
    refs = reference_images(reference, x, adapter.pixel_range, blur_sigma)
    fractions = np.linspace(0.0, 1.0, steps)
    noise_seed = tf.constant([seed, 1], tf.int32) if noise else None
    curves = soft_curves(chunked_probabilities(adapter, adapter.batch_size), tf.constant(x), tf.constant(refs), maps,
                         targets, g, fractions, temperature, iterations, noise_seed, mask_sigma)
    return trapezoid(curves[:, curve], fractions)
