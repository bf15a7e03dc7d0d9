"""Max- and average-sensitivity (Yeh, Hsieh, Suggala, Inouye, Ravikumar, NeurIPS 2019, "On the (In)fidelity
and Sensitivity of Explanations", Definition 3.1 and Sec. 3's average variant):

    SENS_MAX(Phi, f, x, r) = max_{||y - x|| <= r} ||Phi(f, y) - Phi(f, x)||,   SENS_AVG = the mean over y

estimated, as the paper and Quantus (``MaxSensitivity`` / ``AvgSensitivity``) do, by Monte Carlo:
``samples`` points ``y = x + u`` with ``u`` uniform in the L-infinity ball of ``radius`` (a fraction of the
pixel range), each re-explained with the same method. Lower is better.

Choices:

* ``relative=True`` (default) divides by ``||Phi(f, x)||`` (Quantus' default: Frobenius norms of the
  difference and of the original attribution); ``relative=False`` is the paper's unnormalised norm.
* ``Phi`` is the whole attribution (N,H,W,C), channels included, as the method returns it.
* ``radius=0.05`` of the pixel range: Quantus' default ``lower_bound=0.2`` is on ImageNet-standardised
  inputs (std ~0.226 of [0, 1]), i.e. ~0.045 of the range; ``samples=20`` (Xplique's ``AverageStability``;
  Quantus takes 200, each a full re-explanation).
* perturbed images are clipped to the pixel range (they stay images); the noise of row (image i,
  sample s) is seeded by (``seed``, i, s). The method re-runs with the Explanation's seed.

These metrics consume the Explanation (``consumes="explanation"``): ``maps`` must be the result of
``tfxattr.explain`` (its method and options are re-run on the perturbed images, on the same model and
explained output). Constant attributions (all-zero included) are skipped: they are trivially stable.
"""
from __future__ import annotations

import numpy as np

from ..batching import pairs
from ..checks import boolean, positive_float, positive_int
from .inputs import constant_maps, metric_inputs
from .perturbed import over_rows
from .result import MetricResult, skip_images

#: Monte Carlo samples per image (Xplique's AverageStability default)
SENSITIVITY_SAMPLES = 20
#: L-infinity radius as a fraction of the pixel range (Quantus' 0.2 on standardised ImageNet inputs)
SENSITIVITY_RADIUS = 0.05
ZERO_ATTRIBUTION = "the attribution is zero: relative sensitivity undefined"


def max_sensitivity(model, images, maps, targets=None, masks=None, batch_size=32, *, samples=SENSITIVITY_SAMPLES,
                    radius=SENSITIVITY_RADIUS, relative=True, seed=0, progress=False) -> MetricResult:
    """Max-sensitivity (Yeh et al. 2019, Def. 3.1; module docstring): the largest (relative) change of the
    attribution over ``samples`` re-explained points within ``radius``. Score "max_sensitivity", lower is
    better. ``maps``: the Explanation to check. ``masks`` is not used."""
    return _sensitivity("max_sensitivity", np.max, model, images, maps, targets, masks, batch_size, samples, radius,
                        relative, seed, progress)


def avg_sensitivity(model, images, maps, targets=None, masks=None, batch_size=32, *, samples=SENSITIVITY_SAMPLES,
                    radius=SENSITIVITY_RADIUS, relative=True, seed=0, progress=False) -> MetricResult:
    """Average-sensitivity (Yeh et al. 2019, Sec. 3): the mean (relative) change of the attribution over
    ``samples`` re-explained points within ``radius``. Score "avg_sensitivity", lower is better."""
    return _sensitivity("avg_sensitivity", np.mean, model, images, maps, targets, masks, batch_size, samples, radius,
                        relative, seed, progress)


def _sensitivity(name, reduce, model, images, maps, targets, masks, batch_size, samples, radius, relative, seed,
                 progress) -> MetricResult:
    positive_int(samples, "samples")
    positive_float(radius, "radius")
    boolean(relative, "relative")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    inputs = metric_inputs(model, images, maps, targets, masks, batch_size, consumes="explanation",
                           metric=f"metric {name!r}")
    method = inputs.method()
    n = len(inputs.images)
    lo, hi = inputs.adapter.pixel_range
    half_width = radius * (hi - lo)
    flat = inputs.attribution.reshape(n, -1).astype(np.float64)
    norms = np.linalg.norm(flat, axis=1)
    skips = constant_maps(inputs.attribution)
    if relative:
        skips.update({int(i): ZERO_ATTRIBUTION for i in np.flatnonzero(norms == 0) if int(i) not in skips})
    kept = np.array([i for i in range(n) if i not in skips], dtype=int)
    rows = pairs(len(kept), np.arange(samples))
    rows[:, 0] = kept[rows[:, 0]]

    def change(block):  # ||Phi(y) - Phi(x)|| of each (image, sample) row
        image = block[:, 0]
        noise = np.stack([np.random.default_rng([seed, i, s]).uniform(-half_width, half_width, inputs.images.shape[1:])
                          for i, s in block])
        y = np.clip(inputs.images[image] + noise, lo, hi).astype(np.float32)
        again = np.asarray(method.attribute(inputs.adapter, y, inputs.targets[image], seed=inputs.seed))
        return np.linalg.norm(again.reshape(len(block), -1).astype(np.float64) - flat[image], axis=1)

    score = np.full(n, np.nan)
    if len(rows):
        changes = over_rows(rows, inputs.adapter.batch_size, change, progress, name).reshape(len(kept), samples)
        if relative:
            changes = changes / norms[kept, None]
        score[kept] = reduce(changes, axis=1)
    result = MetricResult(name, {name: score}, {name: False}, aggregation="mean",
                          options=dict(samples=samples, radius=radius, relative=relative, seed=seed),
                          targets=inputs.targets, extras={"attribution_norm": norms})
    return skip_images(result, skips)
