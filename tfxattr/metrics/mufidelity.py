"""MuFidelity (Bhatt, Weller, Moura, IJCAI 2020, "Evaluating and Aggregating Feature-based Model
Explanations", Definition 3):

    mu_F(f, g; x) = corr over random subsets S of |S| features of (sum_{i in S} g(f, x)_i, f(x) - f(x_[x_S = xbar_S]))

the correlation between the attribution a subset holds and the drop of the output when that subset is
set to a baseline ``xbar``. Higher is better (1: the attribution predicts every drop).

Choices (the paper leaves them open, or a peer differs):

* subsets: exactly ``round(subset_fraction * cells)`` cells drawn uniformly without replacement
  (the paper's fixed |S|; Xplique's ``MuFidelity`` drops each cell with probability ``subset_percent``),
  the same ``samples`` subsets (seeded by ``seed``) for every image, as Xplique shares its masks in a batch.
* cells: ``grid_size`` x ``grid_size`` patches (Xplique's ``grid_size``, default 9: its nearest-neighbour
  resize of the grid to the image, so the same cell borders); ``grid_size=None`` uses single pixels
  (the paper's definition). All channels of a cell go together; the map's values in a cell are summed.
* ``correlation="pearson"`` (the paper's corr, as Quantus' ``FaithfulnessCorrelation``) or
  ``"spearman"`` (Xplique).
* ``output``: "logit" (default: the target's logit, the score explanations usually explain) or
  "probability" (its softmax probability). On a confident model the float32 softmax saturates at 1, so
  most subsets give no drop at all and the correlation is undefined.
* an image whose drops (or attribution sums) do not vary over the subsets has no correlation: it is
  skipped with that reason (Xplique returns 0 for it). Constant maps are skipped
  (:data:`~tfxattr.metrics.inputs.CONSTANT_MAP`).

The map is used as given: pass a signed map (e.g. the attribution's channel sum) for the paper's signed
attributions; an (N,H,W,C) attribution or an Explanation is reduced like ``Explanation.map``
(:mod:`tfxattr.reduction`: a single channel kept signed, several summed as |a|).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
from scipy.stats import spearmanr

from ..batching import pairs
from ..checks import number, one_of, positive_int
from ..inputs import resolve_baseline
from .inputs import metric_inputs
from .perturbed import over_rows
from .result import MetricResult, skip_images

CORRELATIONS = ("pearson", "spearman")
OUTPUTS = ("probability", "logit")
#: Xplique's MuFidelity defaults: a 9x9 grid, 20% of it set to the baseline, 200 subsets
MUFIDELITY_GRID = 9
MUFIDELITY_FRACTION = 0.2
MUFIDELITY_SAMPLES = 200
#: two points always correlate perfectly (+-1): a correlation says something from three subsets on
MIN_SAMPLES = 3
NO_VARIATION = "the output drop or the attribution sum does not vary over the subsets: no correlation"


def grid_cells(height: int, width: int, grid_size) -> np.ndarray:
    """int (H, W): the cell of each pixel; ``grid_size`` x ``grid_size`` cells laid out by TensorFlow's
    nearest-neighbour resize of the grid (Xplique's ``MuFidelity``), or one cell per pixel for None."""
    if grid_size is None:
        return np.arange(height * width).reshape(height, width)
    ids = tf.reshape(tf.range(grid_size * grid_size, dtype=tf.float32), (1, grid_size, grid_size, 1))
    return tf.image.resize(ids, (height, width), method="nearest").numpy()[0, ..., 0].astype(np.int64)


def random_subsets(cells: int, size: int, samples: int, seed: int) -> np.ndarray:
    """bool (samples, cells): ``samples`` subsets of exactly ``size`` cells, uniform without replacement."""
    order = np.argsort(np.random.default_rng(seed).random((samples, cells)), axis=1)
    chosen = np.zeros((samples, cells), bool)
    np.put_along_axis(chosen, order[:, :size], True, axis=1)
    return chosen


def mufidelity(model, images, maps, targets=None, masks=None, batch_size=32, *, samples=MUFIDELITY_SAMPLES,
               subset_fraction=MUFIDELITY_FRACTION, grid_size=MUFIDELITY_GRID, baseline="black", blur_sigma=20.0,
               correlation="pearson", output="logit", seed=0, progress=False) -> MetricResult:
    """MuFidelity (Bhatt et al. 2020, Def. 3; module docstring): correlation over ``samples`` random
    subsets of ``subset_fraction`` of the cells between the map's sum over the subset and the drop
    ``f(x) - f(x with the subset set to baseline)`` of the target's ``output``.

    Score "mufidelity" in [-1, 1], higher is better. The perturbed images go through the model in
    chunks of ``batch_size`` (image, subset) rows. ``masks`` is not used.
    """
    positive_int(samples, "samples")
    if samples < MIN_SAMPLES:
        raise ValueError(f"samples must be at least {MIN_SAMPLES} (a correlation over fewer subsets is always +-1 or "
                         f"undefined), got {samples}")
    number(subset_fraction, "subset_fraction", 0.0, 1.0)
    number(blur_sigma, "blur_sigma", 0.0)
    one_of(correlation, "correlation", CORRELATIONS)
    one_of(output, "output", OUTPUTS)
    inputs = metric_inputs(model, images, maps, targets, masks, batch_size)
    n, h, w, _ = inputs.images.shape
    if grid_size is not None and positive_int(grid_size, "grid_size") > min(h, w):
        raise ValueError(f"grid_size must be at most the image size {min(h, w)}, got {grid_size}")
    cells = grid_cells(h, w, grid_size)
    n_cells = int(cells.max()) + 1
    size = int(round(subset_fraction * n_cells))
    if not 0 < size < n_cells:
        raise ValueError(f"subset_fraction={subset_fraction} of {n_cells} cells selects {size}: it must select "
                         f"at least one cell and leave at least one")
    chosen = random_subsets(n_cells, size, samples, seed)
    removed = chosen[:, cells]  # (samples, H, W)
    bases = resolve_baseline(baseline, inputs.images, inputs.adapter.pixel_range, blur_sigma)
    adapter = inputs.adapter.with_options(output="logit") if output == "logit" else inputs.adapter
    predict = adapter.scores if output == "logit" else adapter.probabilities
    kept = np.array([i for i in range(n) if i not in inputs.constant], dtype=int)
    rows = pairs(len(kept), np.arange(samples))
    rows[:, 0] = kept[rows[:, 0]]

    def drop(block):
        image, subset = block[:, 0], block[:, 1]
        x = np.where(removed[subset][..., None], bases[image], inputs.images[image])
        return predict(x.astype(np.float32))[np.arange(len(block)), inputs.targets[image]]

    values = np.full((n, samples), np.nan)
    if len(rows):
        values[kept] = over_rows(rows, inputs.adapter.batch_size, drop, progress, "mufidelity").reshape(-1, samples)
    full = (predict(inputs.images) if output == "logit" else inputs.probabilities)[np.arange(n), inputs.targets]
    full = full.astype(np.float64)
    drops = full[:, None] - values
    cell_sums = np.stack([np.bincount(cells.ravel(), m.ravel().astype(np.float64), n_cells) for m in inputs.maps])
    sums = cell_sums @ chosen.T.astype(np.float64)  # (N, samples): the map's mass in each subset
    score = np.full(n, np.nan)
    skipped = {}
    for i in kept:
        if np.ptp(drops[i]) == 0 or np.ptp(sums[i]) == 0:
            skipped[int(i)] = NO_VARIATION
            continue
        score[i] = np.corrcoef(sums[i], drops[i])[0, 1] if correlation == "pearson" \
            else spearmanr(sums[i], drops[i]).statistic
    result = MetricResult("mufidelity", {"mufidelity": score}, {"mufidelity": True},
                          skipped={"mufidelity": skipped}, aggregation="mean",
                          options=dict(samples=samples, subset_fraction=subset_fraction, grid_size=grid_size,
                                       baseline=baseline if isinstance(baseline, str) else "array",
                                       blur_sigma=blur_sigma, correlation=correlation, output=output, seed=seed),
                          targets=inputs.targets, extras={"drops": drops, "attribution_sums": sums,
                                                          "subsets": chosen})
    return skip_images(result, inputs.constant)
