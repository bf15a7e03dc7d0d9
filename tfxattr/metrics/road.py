"""ROAD: Remove And Debias (Rong, Leemann, Borisov, Kasneci, Kasneci, ICML 2022).

Pixels are removed in the order of the map and *imputed* instead of set to a fixed colour, so the shape
of the removed region carries no class information (the paper's "class information leakage"). The
imputation is the paper's noisy linear imputation (Sec. 5, Eq. 9): every removed pixel equals the
weighted mean of its 8 neighbours (direct neighbours 1/6, diagonal ones 1/12, renormalised at the
image border), a sparse linear system over all removed pixels solved at once (the channels are its
right-hand sides), plus Gaussian noise. As the authors' code (github.com/tleemann/road_evaluation,
``road/imputations.py`` ``NoisyLinearImputer``, ``road/imputed_dataset.py``):

* the noise standard deviation is ``noise = 0.01`` of the pixel range (their 0.01 on [0, 1] images,
  imputation before normalisation);
* MoRF at fraction x removes the ``int(x * H * W)`` most relevant pixels; the default fractions are
  their benchmark's ``0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9``; every channel of a pixel goes together.

Where this module chooses:

* LeRF at fraction x removes the ``int(x * H * W)`` *least* relevant pixels, so both curves share the
  x-axis "fraction removed" (the authors' ``remove=False`` at ``th_p = p`` keeps the top p instead:
  their LeRF point p is this LeRF point 1 - p).
* the curves start at x = 0 with the unmodified image; each score is the area under its curve divided
  by the x-range (the mean value over the fractions, in [0, 1]): "morf" lower is better, "lerf" higher
  is better. The paper reports the curves (accuracy per fraction); the area is one number per image.
* ``measure="probability"``: the target's softmax probability (their "average probability" of the
  class predicted when explaining); ``"accuracy"``: top-1 == the label (``labels``, default the targets).
* ties in the map are broken in raster order (the authors add 1e-4 Gaussian noise to the min-max
  scaled map), and the map is the one given (their code sums the attribution's channels).

Constant maps are skipped (:data:`~tfxattr.metrics.inputs.CONSTANT_MAP`).
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import csc_matrix
from scipy.sparse.linalg import spsolve

from ..checks import number, one_of
from .inputs import metric_inputs
from .perturbed import check_fractions, check_labels, gather, pixel_ranks, predict_perturbed
from .result import Curve, MetricResult, skip_images

#: the authors' runtime/benchmark fractions (RoadBenchmarkDemo.ipynb, experiments/cifar10/*_params.json)
ROAD_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9)
#: noise standard deviation as a fraction of the pixel range (the authors' 0.01 on [0, 1] images)
ROAD_NOISE = 0.01
#: (row offset, column offset, weight) of the 8 neighbours in the imputation (the paper's Eq. 9 weights)
NEIGHBOURS = ((-1, -1, 1 / 12), (-1, 0, 1 / 6), (-1, 1, 1 / 12), (0, -1, 1 / 6), (0, 1, 1 / 6),
              (1, -1, 1 / 12), (1, 0, 1 / 6), (1, 1, 1 / 12))
# int(x * H * W) as the authors, robust to binary round-off (0.29 * 100 = 28.999999999999996)
COUNT_TOLERANCE = 1e-9


def linear_imputation(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """``image`` (H,W,C) with every ``removed`` (H,W bool) pixel replaced by the weighted mean of its
    in-image neighbours (:data:`NEIGHBOURS`), removed neighbours included: one sparse symmetric system
    ``sum_j w_j (x_i - x_j) = 0`` over the removed pixels, known neighbours on the right-hand side.

    Solvable whenever some pixel is kept (each connected removed region touches a kept pixel)."""
    h, w, c = image.shape
    flat = image.reshape(-1, c).astype(np.float64)
    idx = np.flatnonzero(removed.reshape(-1))
    if idx.size == 0:
        return image.astype(np.float32)
    if idx.size == h * w:
        raise ValueError("every pixel is removed: nothing is left to impute from")
    variable = np.full(h * w, -1)
    variable[idx] = np.arange(idx.size)
    row, col = np.divmod(idx, w)
    diagonal = np.zeros(idx.size)
    rhs = np.zeros((idx.size, c))
    rows, cols, values = [], [], []
    for dy, dx, weight in NEIGHBOURS:
        r, q = row + dy, col + dx
        inside = np.flatnonzero((r >= 0) & (r < h) & (q >= 0) & (q < w))
        neighbour = r[inside] * w + q[inside]
        diagonal[inside] += weight
        unknown = variable[neighbour] >= 0
        rows.append(inside[unknown])
        cols.append(variable[neighbour[unknown]])
        values.append(np.full(int(unknown.sum()), -weight))
        rhs[inside[~unknown]] += weight * flat[neighbour[~unknown]]
    n = idx.size
    system = csc_matrix((np.concatenate(values + [diagonal]),
                         (np.concatenate(rows + [np.arange(n)]), np.concatenate(cols + [np.arange(n)]))),
                        shape=(n, n))
    out = flat.copy()
    out[idx] = np.asarray(spsolve(system, rhs)).reshape(n, c)
    return out.reshape(h, w, c).astype(np.float32)


def noisy_linear_imputation(image, removed, noise_std: float, rng) -> np.ndarray:
    """:func:`linear_imputation` plus N(0, ``noise_std``) on every removed pixel and channel (ROAD Sec. 5)."""
    out = linear_imputation(image, removed)
    mask = np.asarray(removed, bool)
    out[mask] += (noise_std * rng.standard_normal((int(mask.sum()), image.shape[-1]))).astype(np.float32)
    return out


def imputed_images(image, saliency, counts, noise_std, seed) -> np.ndarray:
    """(2K, H, W, C) float32: ``image`` with its ``counts`` (K,) most relevant pixels of ``saliency`` imputed
    (MoRF), then its ``counts`` least relevant (LeRF), noise from ``np.random.default_rng(seed)``. One
    image's CPU work (a :class:`~tfxattr.parallel.WorkerPool` task: NumPy and SciPy only)."""
    h, w = saliency.shape
    ranks = pixel_ranks(saliency[None])[0]
    rng = np.random.default_rng(seed)
    removed = [ranks < k for k in counts] + [ranks >= h * w - k for k in counts]
    return np.stack([noisy_linear_imputation(image, r, noise_std, rng) for r in removed])


def road(model, images, maps, targets=None, masks=None, batch_size=32, jobs=None, *, fractions=ROAD_FRACTIONS,
         noise=ROAD_NOISE, measure="probability", labels=None, seed=0, progress=False) -> MetricResult:
    """ROAD (Rong et al. 2022): MoRF and LeRF curves with noisy linear imputation (module docstring).

    For x = 0 and each of ``fractions`` (in (0, 1), increasing) the ``int(x*H*W)`` most (MoRF) / least
    (LeRF) relevant pixels are imputed (:func:`noisy_linear_imputation`, noise std ``noise`` times the
    pixel range, seeded by ``seed`` and the image's index) and the model scores the result (``measure``).
    Scores "morf" (lower is better) and "lerf" (higher is better): the mean of each curve over x
    (area / x-range). Every imputed image of several images goes through the model in one chunked call.
    ``masks`` is not used. ``jobs``: processes imputing images (None: every available core; a
    :class:`~tfxattr.parallel.WorkerPool`: the run's) while the model predicts here; the same numbers for
    every value.
    """
    fractions = check_fractions(fractions, "fractions")
    if fractions[-1] >= 1:
        raise ValueError("fractions must be < 1: with every pixel removed nothing is left to impute from")
    number(noise, "noise", 0.0)
    one_of(measure, "measure", ("probability", "accuracy"))
    inputs = metric_inputs(model, images, maps, targets, masks, batch_size)
    n, h, w, _ = inputs.images.shape
    labels = inputs.targets if labels is None else check_labels(labels, n)
    lo, hi = inputs.adapter.pixel_range
    counts = np.floor(fractions * h * w + COUNT_TOLERANCE).astype(int)
    x = np.concatenate([[0.0], fractions])

    def build(i):  # a task: MoRF images for every fraction, then LeRF images
        if i in inputs.constant:
            return np.repeat, (inputs.images[i][None], 2 * len(counts), 0)
        return imputed_images, (inputs.images[i], inputs.maps[i], counts, noise * (hi - lo), [seed, i])

    probs = predict_perturbed(inputs.adapter, n, 2 * len(counts), progress, "road", build, jobs)
    if measure == "accuracy":
        y = (np.argmax(probs, -1) == labels[:, None]).astype(np.float64)
        y0 = (np.argmax(inputs.probabilities, -1) == labels).astype(np.float64)
    else:
        y = gather(probs, inputs.targets).astype(np.float64)
        y0 = inputs.probabilities[np.arange(n), inputs.targets].astype(np.float64)
    curves = {name: Curve(x, np.concatenate([y0[:, None], part], 1), scale=1.0 / x[-1])
              for name, part in (("morf", y[:, :len(counts)]), ("lerf", y[:, len(counts):]))}
    scores = {name: c.scale * np.trapezoid(c.y, c.x, axis=1) for name, c in curves.items()}
    result = MetricResult("road", scores, {"morf": False, "lerf": True}, curves=curves, aggregation="mean",
                          options=dict(fractions=fractions.tolist(), noise=noise, measure=measure, seed=seed),
                          targets=inputs.targets, extras={"pixel_counts": counts, "labels": labels})
    return skip_images(result, inputs.constant)
