"""Weakly supervised localization against object masks (IDGI Sec. 4.6).

Pixels inside the mask are positives, the map's values are the scores. Thresholds run over every
distinct map value (a pixel is predicted positive when its value is >= the threshold; the threshold
above the maximum predicts nothing), so the "best threshold" is exact, not a grid search:

* ``f1``: the best F1 = 2TP / (P + predicted positives) over thresholds (higher is better);
* ``roc_auc``: the rank-based ROC-AUC (Mann-Whitney U, ties count 1/2), NumPy/SciPy only;
* ``mae``: the lowest mean absolute error (FP + FN) / pixels of the thresholded map (lower is better);
  ``mae="continuous"`` instead takes the mean |map - mask| of the map min-max scaled to [0, 1] (the
  salient-object-detection MAE of Cong et al. 2018, IDGI's reference [9]).

IDGI does not say whether F1 and MAE share one threshold; here each takes its own best threshold.
Constant maps (one value everywhere) are skipped with the reason "constant map": they rank no pixel.
"""
from __future__ import annotations

import numpy as np

from ..checks import one_of
from .inputs import metric_inputs
from .result import MetricResult, skip_images


def localization(model, images, maps, targets=None, masks=None, batch_size=32, *,
                 mae="best_threshold") -> MetricResult:
    """Best-threshold F1, ROC-AUC and MAE of the maps against bool object ``masks`` (N,H,W).

    ``model`` and ``targets`` are not needed (pass None); images only fix the expected shapes.
    Images whose mask is empty (F1, ROC-AUC) or full (ROC-AUC), or whose map is constant, are skipped
    with the reason.
    """
    one_of(mae, "mae", ("best_threshold", "continuous"))
    inputs = metric_inputs(None, images, maps, targets, masks, batch_size, needs_model=False, needs_masks=True)
    n = len(inputs.maps)
    scores = {k: np.full(n, np.nan) for k in ("f1", "roc_auc", "mae")}
    skipped = {k: {} for k in scores}
    for i in (i for i in range(n) if i not in inputs.constant):
        values, positive = inputs.maps[i].ravel().astype(np.float64), inputs.masks[i].ravel()
        n_pos = int(positive.sum())
        if n_pos == 0:
            skipped["f1"][i] = skipped["roc_auc"][i] = "the mask is empty"
        elif n_pos == positive.size:
            skipped["roc_auc"][i] = "the mask covers the whole image"
        if i not in skipped["f1"]:
            scores["f1"][i] = best_f1(values, positive)
        if i not in skipped["roc_auc"]:
            scores["roc_auc"][i] = roc_auc(values, positive)
        scores["mae"][i] = best_mae(values, positive) if mae == "best_threshold" else continuous_mae(values, positive)
    return skip_images(MetricResult("localization", scores, {"f1": True, "roc_auc": True, "mae": False},
                                    skipped=skipped, aggregation="mean", options={"mae": mae},
                                    targets=inputs.targets), inputs.constant)


def threshold_counts(values, positive):
    """(predicted positives, true positives) for every threshold: above the max, then each distinct value."""
    order = np.argsort(-values, kind="stable")
    v, pos = values[order], positive[order].astype(np.int64)
    last = np.r_[v[1:] != v[:-1], True]  # the last pixel of each run of equal values
    predicted = np.r_[0, np.flatnonzero(last) + 1]
    true_pos = np.r_[0, np.cumsum(pos)[last]]
    return predicted, true_pos


def best_f1(values, positive) -> float:
    predicted, tp = threshold_counts(values, positive)
    return float(np.max(2.0 * tp / (positive.sum() + predicted)))


def best_mae(values, positive) -> float:
    predicted, tp = threshold_counts(values, positive)
    errors = (predicted - tp) + (positive.sum() - tp)  # false positives + false negatives
    return float(errors.min() / values.size)


def continuous_mae(values, positive) -> float:
    span = np.ptp(values)
    scaled = (values - values.min()) / span if span > 0 else np.zeros_like(values)
    return float(np.mean(np.abs(scaled - positive)))


def roc_auc(values, positive) -> float:
    """P(a positive pixel outranks a negative one), ties 1/2: (rank sum of positives - P(P+1)/2) / (P N)."""
    from scipy.stats import rankdata

    ranks = rankdata(values)
    n_pos = int(positive.sum())
    n_neg = values.size - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
