"""Differentiable sorting: Gumbel-Sinkhorn (Mena et al., ICLR 2018) as Learn to Rank uses it.

Learn to Rank (Schinagl et al. 2026, Sec. 3.1) relaxes the ranking of the attribution map's cells into a
soft permutation matrix ``P`` (rows: ranks, columns: cells), the Sinkhorn normalisation of
``exp((log_alpha + gumbel) / tau)`` with ``log_alpha[i, j] = -(s_j - a_i)^2`` (cell score ``s_j``,
anchor ``a_i`` of rank ``i``), iterated in log space; ``tau`` is annealed linearly during training.

Two choices differ from the authors' code (github.com/dschinagl/AHA, ``sorter/gumbel_sinkhorn.py``),
which puts raw map values against fixed anchors ``linspace(1, 0, n)``: here the scores are min-max
scaled per image and the anchors are those scaled scores sorted (held constant). Then the relaxation
does not depend on the map's scale, every rank has a cell at zero cost, and Sinkhorn converges in a few
iterations at any temperature, so as ``tau -> 0`` (without noise) ``P`` becomes the hard sort. With
fixed anchors and scores bunched in part of [0, 1], 30 iterations leave ``P`` far from doubly
stochastic at low temperature (measured on 64 cells with normal and heavy-tailed scores: rank sums off by
0.1 to 30, versus below 0.02 with sorted anchors).
"""
from __future__ import annotations

import tensorflow as tf

# the scaled scores span SCORE_SPAN units: at tau = 1 a cell's soft rank spreads over cells whose
# scores are within ~1/SCORE_SPAN of the map's range, and Gumbel noise (std 1.3) swaps cells closer than ~0.1
SCORE_SPAN = 10.0
# Learn to Rank's sorter: 30 log-space Sinkhorn iterations, tau annealed from 1 to 0.3
SINKHORN_ITERATIONS = 30
TAU_START, TAU_END = 1.0, 0.3
# keeps log(-log(u)) finite for the Gumbel samples, and min-max scaling finite on constant maps
EPS = 1e-20
FLAT = 1e-12


def scaled_scores(scores: tf.Tensor) -> tf.Tensor:
    """(B, n) scores min-max scaled to [0, SCORE_SPAN] per row (a constant row becomes zeros)."""
    lo = tf.reduce_min(scores, axis=1, keepdims=True)
    span = tf.reduce_max(scores, axis=1, keepdims=True) - lo
    return SCORE_SPAN * (scores - lo) / tf.maximum(span, FLAT)


def gumbel_sinkhorn(scores, temperature, iterations: int = SINKHORN_ITERATIONS, noise_seed=None) -> tf.Tensor:
    """(B, n, n) soft permutation matrices sorting ``scores`` (B, n) in descending order.

    ``P[b, i, j]`` ~ the probability that cell ``j`` holds rank ``i`` (rank 0: the highest score).
    ``noise_seed``: a stateless seed (two ints) adds Gumbel noise (training); None sorts without noise.
    """
    s = scaled_scores(tf.convert_to_tensor(scores, tf.float32))
    anchors = tf.stop_gradient(tf.sort(s, axis=1, direction="DESCENDING"))
    log_alpha = -tf.square(s[:, None, :] - anchors[:, :, None])
    if noise_seed is not None:
        u = tf.random.stateless_uniform(tf.shape(log_alpha), noise_seed, minval=EPS, maxval=1.0 - EPS)
        log_alpha += -tf.math.log(-tf.math.log(u))
    log_alpha /= tf.cast(temperature, tf.float32)
    for _ in range(iterations):
        log_alpha -= tf.reduce_logsumexp(log_alpha, axis=2, keepdims=True)
        log_alpha -= tf.reduce_logsumexp(log_alpha, axis=1, keepdims=True)
    return tf.exp(log_alpha)


def annealed_temperature(progress, start: float = TAU_START, end: float = TAU_END):
    """Linear annealing from ``start`` to ``end`` as ``progress`` goes from 0 to 1 (clipped)."""
    progress = min(max(float(progress), 0.0), 1.0)
    return (1.0 - progress) * start + progress * end
