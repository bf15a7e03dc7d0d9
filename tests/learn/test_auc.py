"""Differentiable deletion / insertion AUCs: gradients, and the hard metrics as the temperature goes to 0."""
import numpy as np
import pytest
import tensorflow as tf

import tfxattr
from tfxattr.learn import soft_deletion_auc, soft_insertion_auc
from tfxattr.learn.auc import HARD_TEMPERATURE
from tfxattr.metrics import deletion, insertion

# the bound between the soft AUCs at low temperature and the hard metrics
TOLERANCE = 0.02
GRID = 32  # the 64-pixel maps are made constant on 2 x 2 cells, so the grid-pooled map is the map


@pytest.mark.parametrize("soft", [soft_deletion_auc, soft_insertion_auc])
def test_gradients_are_finite_and_non_zero(soft, demo_model, demo_data):
    images = demo_data["images"][:2]
    maps = tf.Variable(np.random.default_rng(0).random((2, 64, 64)), dtype=tf.float32)
    with tf.GradientTape() as tape:
        auc = tf.reduce_sum(soft(demo_model, images, maps, [0, 1], grid=8, temperature=1.0, noise=True, steps=8,
                                 mask_sigma=1.0))
    g = tape.gradient(auc, maps).numpy()
    assert np.all(np.isfinite(g)) and np.count_nonzero(g) > 0.5 * g.size


def test_low_temperature_matches_the_hard_metrics(demo_model, demo_data):
    images = demo_data["images"][:3]
    e = tfxattr.explain(demo_model, images, "ig", steps=20, progress=False)
    coarse = e.map.reshape(3, GRID, 2, GRID, 2).mean(axis=(2, 4))
    maps = np.repeat(np.repeat(coarse, 2, axis=1), 2, axis=2)
    hard_d = deletion(demo_model, images, maps, e.targets).scores["deletion"]
    hard_i = insertion(demo_model, images, maps, e.targets).scores["insertion"]
    soft_d = soft_deletion_auc(demo_model, images, maps, e.targets, grid=GRID, temperature=HARD_TEMPERATURE).numpy()
    soft_i = soft_insertion_auc(demo_model, images, maps, e.targets, grid=GRID, temperature=HARD_TEMPERATURE).numpy()
    assert np.max(np.abs(soft_d - hard_d)) < TOLERANCE
    assert np.max(np.abs(soft_i - hard_i)) < TOLERANCE
    # and a warm sort is visibly softer: the limit is what brings them together
    warm = soft_deletion_auc(demo_model, images, maps, e.targets, grid=GRID, temperature=1.0).numpy()
    assert np.max(np.abs(warm - hard_d)) > np.max(np.abs(soft_d - hard_d))


def test_bad_input(demo_model, demo_data):
    images = demo_data["images"][:2]
    maps = np.ones((2, 64, 64), np.float32)
    with pytest.raises(ValueError, match="maps"):
        soft_deletion_auc(demo_model, images, maps[:, :32], [0, 1])
    with pytest.raises(ValueError, match="grid"):
        soft_deletion_auc(demo_model, images, maps, [0, 1], grid=65)
    with pytest.raises(ValueError, match="reference"):
        soft_insertion_auc(demo_model, images, maps, [0, 1], reference="blak")
    with pytest.raises(ValueError, match="temperature"):
        soft_insertion_auc(demo_model, images, maps, [0, 1], temperature=0)
