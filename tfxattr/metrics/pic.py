"""SIC and AIC: Performance Information Curves (Kapishnikov et al., XRAI, ICCV 2019).

Same numbers as PAIR's ``saliency.metrics.pic.compute_pic_metric`` on the same image, map, random
mask and thresholds: the baseline ("fully blurred") image is rebuilt from 1% random pixels by linear
interpolation, each threshold t reveals the pixels whose map value is >= the (1 - t) quantile, the
information level is the lossless WebP size, and the prediction (SIC: softmax of the class; AIC: 1 if
the class is the top-1, else 0) is normalised between the baseline and the original image, kept
monotonous, interpolated on ``num_data_points`` points and integrated. Faster than PAIR because:

* one Delaunay triangulation per revealed-pixel mask serves every channel (PAIR triangulates the same
  points once per channel), and the pixels are located in its triangles and interpolated exactly in
  integer arithmetic (:func:`interpolate_unknown`) instead of by scipy's per-triangle LAPACK transforms
  (which OpenBLAS threading makes 8-10x slower under load, and which dominate PAIR's runtime);
* SIC and AIC come from one prediction pass, and the baseline and all thresholds' images of several
  images go through the model together, chunked by ``batch_size`` (PAIR: batch size 1);
* an image equal to the original (the 100% threshold) reuses the original's information level.

The triangulation itself (qhull, ~60% of the remaining time) cannot be made cheaper with the same
numbers: where revealed pixels are cocircular (most of a pixel grid) qhull's choice of diagonal depends
on the whole point set and its order, so it must run on exactly PAIR's points (bench/results_metrics.md).

Variants: ``baseline="blur"`` (IDGI Sec. 4.4: PIL GaussianBlur of standard deviation ``blur_sigma``,
PIL's ``radius``, as the baseline, no random pixels), ``information="msssim"`` (IDGI Sec. 4.5: MS-SSIM to
the original) and ``information="entropy"`` (GGIG Sec. 5: Shannon entropy of the grey image). Images are
quantised to 8 bits first (PAIR's input type; WebP needs it). The images are built in :mod:`.bokeh`, their
information levels measured in :mod:`.information`.

Aggregation over images (the paper's number): SIC with the median, AIC with the mean, as XRAI
(Kapishnikov et al. 2019, Sec. 4) and IDGI Sec. 4.4 do; PAIR's ``aggregate_individual_pic_results``
defaults to the median for both, which understates AIC (a pointwise median of 0/1 curves).

Estimators: ``estimator="interpolate"`` (PAIR, ``sic_aic``/``sic_aic_pair``): each image's curve is
interpolated on ``num_data_points`` points, the curves are aggregated pointwise and the area taken.
``estimator="binned"`` (IDGI Sec. 4.4, the ``sic_aic_idgi*`` presets): "Bokeh images are binned based on
the information level. Then, the average accuracy for each bin is calculated. AIC is the curve of those
mean accuracies over bins. [...] the probability of bokeh versus the original image is calculated for each
image in each bin. SIC is the curve of the median of those values"; "For information level bin size, we use
100". Here, for every kept image and each of its threshold (bokeh) images j:

* x_j = the information level normalised between the baseline and the original image, clipped to [0, 1]
  (IDGI: "we utilize the implementation from [21] to compute the Normalized Entropy", i.e. PAIR's);
* AIC: y_j = 1 if the class is the top-1 on bokeh image j, else 0; SIC: y_j = p_j / p_original (the class
  probability on the bokeh image versus on the original); with ``keep_monotonous`` (XRAI's, PAIR's
  default) y is made non-decreasing over the thresholds of the image, as PAIR's curves are;
* all points of all kept images are pooled and cut into ``bins`` equal bins of x; a bin's value is the
  mean (AIC) or median (SIC) of its points (the score's aggregation); the curve runs through the
  non-empty bins' centres and its area is the trapezoid rule (:func:`tfxattr.metrics.result.binned_curve`).

Per-image scores and curves stay PAIR's (the spread in reports); only the aggregate is binned.
"""
from __future__ import annotations

import numpy as np

from ..checks import known_keys, number, one_of, positive_int
from ..parallel import worker_pool
from ..progress import progress_bar
from .bokeh import bokeh_images, from_uint8, random_masks, to_uint8
from .information import INFORMATION, information_levels
from .inputs import metric_inputs
from .perturbed import check_fractions, image_groups
from .result import AGGREGATIONS, Curve, MetricResult, skip_images

#: PAIR's notebook thresholds (fractions of the most salient pixels revealed).
PAIR_THRESHOLDS = (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.07, 0.10, 0.13, 0.21, 0.34, 0.5, 0.75)
#: IDGI Sec. 4.4 "25 percentile values, distributed from 0 to 100": read as 4%, 8%, ..., 100% (25 equal
#: steps ending at the full image). Not linspace(0, 100, 25): a 0% threshold is the baseline image itself, which
#: PAIR's implementation (that IDGI says it uses) treats as the curve's origin, not as a bokeh image, and
#: 0 is not a valid fraction of revealed pixels; 4% steps are the one equal spacing with 25 values up to 100.
IDGI_THRESHOLDS = tuple(np.round(np.linspace(0.04, 1.0, 25), 10))
#: XRAI Sec. 4 and IDGI Sec. 4.4: SIC is aggregated with the median over images, AIC with the mean.
PIC_AGGREGATION = {"sic": "median", "aic": "mean"}
ESTIMATORS = ("interpolate", "binned")
#: IDGI Sec. 4.4: "For information level bin size, we use 100".
IDGI_BINS = 100
#: SIC/AIC's baseline images: PAIR's interpolation from random pixels, or IDGI's PIL blur
BASELINES = ("interpolate", "blur")


def sic_aic(model, images, maps, targets=None, masks=None, batch_size=32, jobs=None, *, thresholds=PAIR_THRESHOLDS,
            baseline="interpolate", random_mask=None, random_fraction=0.01, blur_sigma=20.0, information="webp",
            min_pred_value=0.8, keep_monotonous=True, num_data_points=1000, aggregation=None,
            estimator="interpolate", bins=IDGI_BINS, seed=0, progress=False) -> MetricResult:
    """SIC and AIC (XRAI; PAIR's compute_pic_metric), batched; scores "sic" and "aic" (higher is better).

    ``random_mask`` (``baseline="interpolate"`` only): bool (H,W) for every image or (N,H,W), the seed
    pixels of the interpolated baseline; None draws ``random_fraction`` of the pixels per image from
    ``seed``. ``blur_sigma`` (``baseline="blur"``): the Gaussian's standard deviation in pixels, which is what
    PIL's ``GaussianBlur(radius)`` takes. Images whose original prediction is below ``min_pred_value`` (AIC:
    the class is not the top-1), whose baseline image holds no less information than the original, or whose
    baseline image scores no lower, are skipped with the reason (PAIR raises ComputePicMetricError); so are
    constant maps. ``masks`` is not used. ``aggregation``: None = the papers' (SIC median, AIC mean,
    :data:`PIC_AGGREGATION`), "mean"/"median" for both, or a dict {"sic": ..., "aic": ...}.
    ``estimator``: "interpolate" (PAIR) or "binned" (IDGI Sec. 4.4, ``bins`` bins; module docstring).
    ``jobs``: processes building the images' bokeh images and information levels (None: every available
    core; a :class:`~tfxattr.parallel.WorkerPool`: the run's), while the model predicts in this process; the
    same numbers for every value.
    """
    thresholds = check_fractions(thresholds, "thresholds")
    one_of(baseline, "baseline", BASELINES)
    one_of(information, "information", INFORMATION)
    one_of(estimator, "estimator", ESTIMATORS)
    positive_int(bins, "bins")
    score_aggregation = pic_aggregation(aggregation)
    number(min_pred_value, "min_pred_value")
    number(random_fraction, "random_fraction", 0.0, 1.0)
    number(blur_sigma, "blur_sigma", 0.0)
    positive_int(num_data_points, "num_data_points")
    inputs = metric_inputs(model, images, maps, targets, masks, batch_size)
    adapter, n = inputs.adapter, len(inputs.images)
    lo, hi = adapter.pixel_range
    u8 = to_uint8(inputs.images, (lo, hi))
    probs = inputs.probabilities
    if not np.array_equal(from_uint8(u8, (lo, hi)), inputs.images):
        probs = adapter.probabilities(from_uint8(u8, (lo, hi)))
    seeds = random_masks(random_mask, u8.shape[:3], random_fraction, seed) if baseline == "interpolate" else None
    t = inputs.targets
    original = {"sic": probs[np.arange(n), t].astype(np.float64),
                "aic": (np.argmax(probs, -1) == t).astype(np.float64)}
    skipped = {"sic": dict(inputs.constant), "aic": dict(inputs.constant)}
    for name, value in original.items():
        for i in np.flatnonzero(value < min_pred_value):
            skipped[name].setdefault(int(i), f"prediction on the original image {value[i]:.4g} is below "
                                             f"min_pred_value={min_pred_value}")
    work = [i for i in range(n) if i not in skipped["sic"] or i not in skipped["aic"]]
    steps = len(thresholds) + 1  # the baseline image, then one image per threshold
    info = np.full((n, steps + 1), np.nan)  # original, baseline, thresholds
    preds = {name: np.full((n, steps + 1), np.nan) for name in original}
    groups = list(image_groups(len(work), steps, batch_size))
    tasks = ((u8[i], inputs.maps[i], thresholds, baseline, None if seeds is None else seeds[i:i + 1], blur_sigma,
              information) for i in work)
    with worker_pool(jobs, len(work)) as pool, progress_bar(len(groups), "sic_aic", progress) as bar:
        # the workers build the next group's images while the model predicts this group's
        done = pool.ordered(image_work, tasks, ahead=len(groups[0]) + pool.jobs if groups else None)
        for group in groups:
            idx = [work[g] for g in group]
            stacks, levels = zip(*[next(done) for _ in idx])
            levels = information_levels(u8[idx], stacks, information) if information == "msssim" \
                else np.array(levels)
            p = adapter.probabilities(from_uint8(np.concatenate(stacks), (lo, hi))).reshape(len(idx), steps, -1)
            tt = t[idx][:, None]
            info[idx] = levels
            preds["sic"][idx, 1:] = np.take_along_axis(p, tt[..., None], -1)[..., 0]
            preds["aic"][idx, 1:] = np.argmax(p, -1) == tt
            bar.update()
    for name in preds:
        preds[name][:, 0] = original[name]
    curve_x = np.append(np.linspace(0.0, 1.0, num=num_data_points, endpoint=False), 1.0)
    scores, curves = {}, {}
    for name in ("sic", "aic"):
        ys = np.full((n, len(curve_x)), np.nan)
        points = np.full((n, len(thresholds), 2), np.nan)
        for i in work:
            if i in skipped[name]:
                continue
            reason = unusable(info[i], preds[name][i])
            if reason:
                skipped[name][i] = reason
                continue
            ys[i] = pic_curve(info[i, 2:], preds[name][i, 2:], info[i, 1], info[i, 0], preds[name][i, 1],
                              preds[name][i, 0], keep_monotonous, curve_x)
            points[i] = bin_points(info[i], preds[name][i], name, keep_monotonous)
        curves[name] = Curve(curve_x, ys, points=points if estimator == "binned" else None,
                             bins=bins if estimator == "binned" else 0)
        scores[name] = np.array([np.trapezoid(y, curve_x) if np.all(np.isfinite(y)) else np.nan for y in ys])
    options = dict(thresholds=thresholds.tolist(), baseline=baseline, random_fraction=random_fraction,
                   blur_sigma=blur_sigma, information=information, min_pred_value=min_pred_value,
                   keep_monotonous=keep_monotonous, num_data_points=num_data_points, seed=seed,
                   aggregation=dict(score_aggregation), estimator=estimator, bins=bins)
    result = MetricResult("sic_aic", scores, {"sic": True, "aic": True}, curves=curves, skipped=skipped,
                          aggregation=score_aggregation["sic"], score_aggregation=score_aggregation,
                          options=options, targets=t, extras={"thresholds": thresholds, "information": info,
                                                              "predictions": preds, "random_masks": seeds})
    return skip_images(result, inputs.constant)


def image_work(img, saliency, thresholds, baseline, seeds, blur_sigma, information):
    """The CPU work of one image (a :class:`~tfxattr.parallel.WorkerPool` task, no TensorFlow): its bokeh
    images (:func:`bokeh_images`) and, except for MS-SSIM (TensorFlow, computed in the parent), their
    information levels (:func:`information_levels`); ``seeds``: (1, H, W) or None."""
    stack = bokeh_images(img, saliency, thresholds, baseline, seeds, 0, blur_sigma)
    levels = None if information == "msssim" else information_levels(img[None], [stack], information)[0]
    return stack, levels


def pic_aggregation(aggregation) -> dict:
    """{"sic": how, "aic": how} from the ``aggregation`` option (None: :data:`PIC_AGGREGATION`)."""
    if aggregation is None:
        return dict(PIC_AGGREGATION)
    if isinstance(aggregation, str):
        one_of(aggregation, "aggregation", AGGREGATIONS)
        return {name: aggregation for name in PIC_AGGREGATION}
    if not isinstance(aggregation, dict):
        raise ValueError(f"aggregation must be None, 'mean', 'median' or a dict of score -> mean|median, "
                         f"got {aggregation!r}")
    known_keys(aggregation, PIC_AGGREGATION, "score", "aggregation")
    for how in aggregation.values():
        one_of(how, "aggregation values", AGGREGATIONS)
    return {**PIC_AGGREGATION, **aggregation}


def bin_points(info, preds, name, keep_monotonous) -> np.ndarray:
    """(T, 2) points (x, y) of one image's threshold images for IDGI's binned estimator (module docstring).

    ``info``/``preds``: (T+2,) information levels and predictions of the original, the baseline, then the
    T threshold images. x: level normalised between baseline and original, clipped to [0, 1]; y: AIC the 0/1
    hit, SIC the probability divided by the original's; running max over thresholds if ``keep_monotonous``.
    """
    x = np.clip((info[2:] - info[1]) / (info[0] - info[1]), 0.0, 1.0)
    y = preds[2:] if name == "aic" else preds[2:] / preds[0]
    if keep_monotonous:
        y = np.maximum.accumulate(y)
    return np.stack([x, y], -1)


def unusable(info, preds):
    """PAIR's reasons (after the confidence floor) why a curve cannot be drawn, or ''."""
    if info[1] >= info[0]:
        return (f"the baseline image holds no less information ({info[1]:.6g}) than the original "
                f"({info[0]:.6g})")
    if preds[1] >= preds[0]:
        return f"the baseline image scores no lower ({preds[1]:.4g}) than the original ({preds[0]:.4g})"
    return ""


def pic_curve(levels, preds, baseline_level, original_level, baseline_pred, original_pred, keep_monotonous,
              curve_x):
    """PAIR's curve: normalise, clip to [0, 1], running max, add (0,0) and (1,1), interpolate on ``curve_x``."""
    from scipy.interpolate import interp1d

    x = np.clip((levels - baseline_level) / (original_level - baseline_level), 0.0, 1.0)
    y = np.clip((preds - baseline_pred) / (original_pred - baseline_pred), 0.0, 1.0)
    if keep_monotonous:
        y = np.maximum.accumulate(y)
    f = interp1d(x=np.append(x, [0.0, 1.0]), y=np.append(y, [0.0, 1.0]))
    return np.append(f(curve_x[:-1]), 1.0)
