"""Best-threshold F1, ROC-AUC and MAE against object masks, checked against hand-computed values."""
import numpy as np
import pytest

from tfxattr.metrics import compute
from tfxattr.metrics.localization import best_f1, best_mae, roc_auc


def one(values, mask):
    """A 1 x len image holding ``values`` and ``mask``."""
    v = np.asarray(values, float)[None, None]
    return np.zeros((1, 1, v.shape[-1], 3), np.float32), v, np.asarray(mask, bool)[None, None]


def test_hand_computed_example():
    images, maps, masks = one([0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0])
    res = compute("localization", None, images, maps, masks=masks)
    # thresholds 0.9 / 0.8 / 0.7 / 0.1 predict 1..4 pixels: F1 = 2/3, 1/2, 4/5, 2/3 -> best 0.8
    assert res.scores["f1"][0] == pytest.approx(0.8)
    # positive beats negative in 3 of the 4 (positive, negative) pairs
    assert res.scores["roc_auc"][0] == pytest.approx(0.75)
    # errors (FP + FN): none predicted 2, t=0.9 1, t=0.8 2, t=0.7 1, t=0.1 2 -> 1 / 4 pixels
    assert res.scores["mae"][0] == pytest.approx(0.25)
    assert res.higher_is_better == {"f1": True, "roc_auc": True, "mae": False}


def test_ties_count_half_and_share_a_threshold():
    values, mask = np.array([0.5, 0.5, 0.5, 0.2]), np.array([1, 0, 1, 0], bool)
    # pairs: (p, n) = (.5,.5) tie x2 -> 1/2 each, (.5,.2) wins x2 -> (1 + 2) / 4
    assert roc_auc(values, mask) == pytest.approx(0.75)
    # tied pixels are predicted together: t=0.5 gives TP 2, predicted 3 -> F1 = 4/5; t=0.2: 4/6
    assert best_f1(values, mask) == pytest.approx(0.8)
    assert best_mae(values, mask) == pytest.approx(0.25)


def test_roc_auc_equals_pairwise_count_and_is_rank_invariant():
    rng = np.random.default_rng(0)
    values = np.round(rng.random(300), 2)  # many ties
    mask = rng.random(300) < 0.3
    pos, neg = values[mask], values[~mask]
    pairwise = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (pos.size * neg.size)
    assert roc_auc(values, mask) == pytest.approx(pairwise, abs=1e-12)
    assert roc_auc(np.exp(3 * values), mask) == pytest.approx(pairwise, abs=1e-12)
    assert roc_auc(mask.astype(float), mask) == 1.0 and roc_auc(-mask.astype(float), mask) == 0.0


def test_best_f1_and_mae_equal_a_brute_force_threshold_sweep():
    rng = np.random.default_rng(1)
    values = np.round(rng.random(200), 1)
    mask = rng.random(200) < 0.4
    f1s, maes = [], []
    for t in np.r_[np.unique(values), np.inf]:
        pred = values >= t
        tp, fp, fn = (pred & mask).sum(), (pred & ~mask).sum(), (~pred & mask).sum()
        f1s.append(2 * tp / (2 * tp + fp + fn))
        maes.append((fp + fn) / values.size)
    assert best_f1(values, mask) == pytest.approx(max(f1s))
    assert best_mae(values, mask) == pytest.approx(min(maes))


def test_continuous_mae_and_perfect_maps():
    images, maps, masks = one([4.0, 2.0, 0.0, 0.0], [1, 1, 0, 0])
    res = compute("localization", None, images, maps, masks=masks, mae="continuous")
    assert res.scores["mae"][0] == pytest.approx((0 + 0.5 + 0 + 0) / 4)  # scaled map [1, .5, 0, 0]
    perfect = compute("localization", None, images, maps, masks=masks)
    assert perfect.scores["f1"][0] == 1.0 and perfect.scores["roc_auc"][0] == 1.0 and perfect.scores["mae"][0] == 0.0


def test_empty_and_full_masks_are_skipped_with_reasons():
    images = np.zeros((3, 2, 2, 3), np.float32)
    maps = np.random.default_rng(0).random((3, 2, 2))
    masks = np.array([[[0, 0], [0, 0]], [[1, 1], [1, 1]], [[1, 0], [0, 0]]], bool)
    res = compute("localization", None, images, maps, masks=masks)
    assert res.skipped["f1"] == {0: "the mask is empty"}
    assert res.skipped["roc_auc"] == {0: "the mask is empty", 1: "the mask covers the whole image"}
    assert res.skipped["mae"] == {}
    assert np.isnan(res.scores["roc_auc"][:2]).all() and np.isfinite(res.scores["roc_auc"][2])
    assert res.aggregate()["roc_auc"] == pytest.approx(res.scores["roc_auc"][2])


def test_bad_localization_inputs_raise():
    images, maps, masks = one([1.0, 0.0], [1, 0])
    with pytest.raises(ValueError, match="masks are required"):
        compute("localization", None, images, maps)
    with pytest.raises(ValueError, match="masks must have shape"):
        compute("localization", None, images, maps, masks=np.ones((1, 2, 1), bool))
    with pytest.raises(ValueError, match="masks must be boolean"):
        compute("localization", None, images, maps, masks=np.full((1, 1, 2), 0.5))
    with pytest.raises(ValueError, match="mae must be one of"):
        compute("localization", None, images, maps, masks=masks, mae="l2")
    with pytest.raises(ValueError, match="maps must have shape"):
        compute("localization", None, images, maps[..., :1], masks=masks)
