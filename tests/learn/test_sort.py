"""Gumbel-Sinkhorn soft sort (Mena et al. 2018) as Learn to Rank uses it."""
import numpy as np
import tensorflow as tf

from tfxattr.learn.auc import cumulative_masks
from tfxattr.learn.sort import annealed_temperature, gumbel_sinkhorn


def test_soft_permutation_is_doubly_stochastic():
    scores = tf.constant(np.random.default_rng(0).normal(size=(3, 20)), tf.float32)
    for seed in (None, [1, 2]):
        p = gumbel_sinkhorn(scores, 0.5, noise_seed=seed).numpy()
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-4)  # each cell: the last normalisation, exact
        np.testing.assert_allclose(p.sum(axis=2), 1.0, atol=0.05)  # each rank: 30 iterations, approximately


def test_low_temperature_without_noise_is_the_hard_sort():
    scores = np.random.default_rng(1).normal(size=(2, 12)).astype(np.float32)
    p = gumbel_sinkhorn(tf.constant(scores), 1e-4).numpy()
    for b in range(2):
        np.testing.assert_array_equal(p[b].argmax(axis=1), np.argsort(-scores[b]))
        np.testing.assert_allclose(p[b].max(axis=1), 1.0, atol=1e-3)


def test_scale_free_and_seeded_noise():
    scores = tf.constant(np.random.default_rng(2).normal(size=(1, 10)), tf.float32)
    np.testing.assert_allclose(gumbel_sinkhorn(scores, 0.3), gumbel_sinkhorn(100 * scores + 7, 0.3), atol=1e-5)
    a, b = gumbel_sinkhorn(scores, 1.0, noise_seed=[3, 4]), gumbel_sinkhorn(scores, 1.0, noise_seed=[3, 4])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, gumbel_sinkhorn(scores, 1.0, noise_seed=[3, 5]))


def test_cumulative_masks_of_a_hard_permutation_are_top_k():
    order = np.array([2, 0, 3, 1])
    perm = np.eye(4, dtype=np.float32)[order][None]  # rank i holds cell order[i]
    masks = cumulative_masks(tf.constant(perm), [0.0, 0.5, 0.625, 1.0]).numpy()[0]
    np.testing.assert_array_equal(masks[0], 0)
    np.testing.assert_array_equal(masks[1], [1, 0, 1, 0])  # the top two cells: 2 and 0
    np.testing.assert_allclose(masks[2], [1, 0, 1, 0.5])  # 2.5 cells: half of the third, cell 3
    np.testing.assert_array_equal(masks[3], 1)


def test_temperature_schedule():
    assert annealed_temperature(0.0) == 1.0 and abs(annealed_temperature(1.0) - 0.3) < 1e-12
    assert annealed_temperature(2.0) == annealed_temperature(1.0)
    assert abs(annealed_temperature(0.5) - 0.65) < 1e-12
