"""Attribution metrics with one calling convention, registered by name in :data:`METRICS`.

Calling convention (every entry of ``METRICS``; a runner can call them all the same way)::

    result = METRICS[name](model, images, maps, targets=None, masks=None, batch_size=32, **options)
    # or: compute(name, model, images, maps, targets=..., masks=..., batch_size=..., **options)

* ``model``: anything ``tfxattr.as_model`` accepts, or a ``ModelAdapter`` (None for "localization").
* ``images``: pixels (N,H,W,C) in the model's pixel range (or one (H,W,C) image, paths, PIL images).
* ``maps``: attribution maps (N,H,W); (N,H,W,C) or (N,H,W,1) is reduced like ``Explanation.map`` (one
  channel reduction, :mod:`tfxattr.reduction`: a single channel kept signed, several summed as |a|); or an
  ``Explanation``: its map, and its images, targets, pixel range and output (``metric_inputs``,
  :mod:`tfxattr.metrics.inputs`, normalises every metric's inputs this one way).
* ``targets``: the class each map explains: one int, one per image, or None = each image's top-1.
* ``masks``: bool object masks (N,H,W); required by metrics registered with ``needs_masks``, checked
  but unused by the others.
* ``jobs``: processes for the per-image CPU work of the metrics registered ``parallel`` (SIC/AIC and its
  variants, ROAD): None = every core the process may use, 1 = none, or a run's
  :class:`~tfxattr.parallel.WorkerPool`; the numbers do not depend on it (:mod:`tfxattr.parallel`).
* ``batch_size``: the model's chunk size. All perturbed images of an image (every threshold or step)
  and of several images go through the model together, in chunks of ``batch_size``.
* ``options``: metric-specific keywords (``METRICS[name].defaults`` lists them with their defaults);
  an unknown option, metric name, bad shape or count, or a fraction outside (0, 1] raises ValueError; a
  retired option name (``base``, ``blur_radius``, ``draws``, ...: :data:`tfxattr.checks.RENAMED`) is refused
  with the name that replaced it ("metric 'insertion': option 'base' was renamed 'baseline'").

It returns a :class:`MetricResult`:

* ``scores``: score name -> float64 (N,) per-image values, NaN where skipped;
* ``skipped``: score name -> {image index: reason} (e.g. below ``min_pred_value``; never silent);
* ``curves``: score name -> ``Curve(x (P,), y (N,P), scale)`` for scores that are areas under curves;
* ``higher_is_better``, ``aggregation`` and ``score_aggregation`` (the paper's, per score: SIC median,
  AIC mean (XRAI, IDGI Sec. 4.4), else "mean"; ``aggregation_of(score)``), ``options``, ``targets``,
  ``extras``; ``aggregate(method=None) -> {score: float}`` (curves are aggregated pointwise, then
  integrated, as PAIR does; IDGI's binned curves pool and bin the images' points),
  ``aggregate_curves()``, ``summary()`` (text), ``to_dict()`` (JSON-ready).
* Constant maps (all-zero included) rank nothing: every maps metric skips them with the reason
  ``"constant map"`` (``tfxattr.metrics.inputs.constant_maps``).

Registered metrics (scores in brackets):

* ``sic_aic`` [sic, aic]: PAIR ``compute_pic_metric`` defaults (min_pred_value 0.8), PAIR's thresholds.
* ``sic_aic_pair``: PAIR's notebook settings (13 thresholds, 1% random pixels, min_pred_value 0.5).
* ``sic_aic_idgi``: IDGI Table 2 (PIL blur baseline, ``blur_sigma`` 20 = PIL's radius 20, 25 thresholds,
  WebP; aggregate = the paper's estimator over 100 bins of information level, ``estimator="binned"``).
* ``sic_aic_idgi_msssim``: IDGI Table 3 (as above, information = MS-SSIM to the original).
* ``sic_aic_ggig``: GGIG Table 2 (PAIR notebook settings, information = grey-level entropy).
* ``insertion`` [insertion, insertion_ratio] / ``deletion`` [deletion, deletion_ratio]: IDGI Sec. 4.3,
  5% steps from a black image (``baseline="blur"`` for a blurred one); probability and probability ratio.
* ``pos_neg`` [pos, neg]: IIA's positive/negative perturbation AUC (percent; Chefer et al.'s test as in
  the IIA group's LTX code).
* ``adp_pic`` [adp, pic]: IIA's Average Drop % and % Increase in Confidence (Grad-CAM++).
* ``localization`` [f1, roc_auc, mae]: IDGI Sec. 4.6 against object masks.
* ``grid_localization`` (consumes "grid"): Rao et al. grid localization (:mod:`tfxattr.metrics.grids`).
* ``cascading_randomization``, ``sigma_perturbation`` [spearman, spearman_abs, ssim, probability] (consumes
  "explanation"): the sanity checks (Adebayo et al. 2018; GGIG Sec. 4) re-run the Explanation's method on
  the model with its weights re-initialised or perturbed, and set back (:mod:`.sanity`).
* ``road`` [morf, lerf]: ROAD (Rong et al. 2022), noisy linear imputation, MoRF/LeRF curves (:mod:`.road`).
* ``mufidelity`` [mufidelity]: Bhatt et al. (2020) Def. 3, Pearson (or Spearman) over random grid subsets.
* ``max_sensitivity`` / ``avg_sensitivity`` (consumes "explanation"): Yeh et al. (2019), the method is
  re-run on points within a radius; ``completeness`` [abs_error, rel_error] (consumes "explanation"):
  sum of attributions vs f(x) - f(path start). "explanation" metrics take the Explanation as ``maps``.

Capabilities are declared where a metric is registered (``register_metric(name, fn, summary,
consumes=..., needs_masks=..., uses_labels=..., curve_axes=..., **preset)``) and read as
``METRICS[name].consumes`` etc. by the evaluation runner, the report and the tests.
"""
from .completeness import completeness
from .grids import grid_localization
from .localization import localization
from .mufidelity import mufidelity
from .perturbation import adp_pic, deletion, insertion, pos_neg
from .pic import IDGI_BINS, IDGI_THRESHOLDS, PAIR_THRESHOLDS, PIC_AGGREGATION, sic_aic
from .registry import METRICS, MetricSpec, compute, get_metric, metric_options, register_metric, unregister_metric
from .result import Curve, MetricResult
from .road import road
from .sanity import cascading_randomization_metric, sigma_perturbation_metric
from .sensitivity import avg_sensitivity, max_sensitivity

# x-axis labels of the curves (the report's plots)
PIC_AXES = {"sic": "information level (normalised)", "aic": "information level (normalised)"}
INSERTION_AXES = {"insertion": "fraction of pixels inserted", "insertion_ratio": "fraction of pixels inserted"}
DELETION_AXES = {"deletion": "fraction of pixels deleted", "deletion_ratio": "fraction of pixels deleted"}
POS_NEG_AXES = {"pos": "fraction of pixels removed", "neg": "fraction of pixels removed"}
# SIC/AIC: curves over the information level; bokeh images and WebP sizes built on ``jobs`` processes
PIC_SPEC = dict(curve_axes=PIC_AXES, parallel=True)
ROAD_AXES = {"morf": "fraction of pixels imputed, most relevant first",
             "lerf": "fraction of pixels imputed, least relevant first"}

register_metric("sic_aic", sic_aic, **PIC_SPEC)
register_metric("sic_aic_pair", sic_aic, "SIC/AIC with PAIR's notebook settings (min_pred_value 0.5)",
                **PIC_SPEC, thresholds=PAIR_THRESHOLDS, random_fraction=0.01, min_pred_value=0.5,
                num_data_points=1000)
register_metric("sic_aic_idgi", sic_aic, "SIC/AIC as IDGI Table 2: PIL blur r=20 baseline, 25 thresholds, 100 bins",
                **PIC_SPEC, thresholds=IDGI_THRESHOLDS, baseline="blur", blur_sigma=20.0, num_data_points=100,
                min_pred_value=0.5, estimator="binned", bins=IDGI_BINS)
register_metric("sic_aic_idgi_msssim", sic_aic, "SIC/AIC as IDGI Table 3: information level = MS-SSIM",
                **PIC_SPEC, thresholds=IDGI_THRESHOLDS, baseline="blur", blur_sigma=20.0, num_data_points=100,
                min_pred_value=0.5, information="msssim", estimator="binned", bins=IDGI_BINS)
register_metric("sic_aic_ggig", sic_aic, "SIC/AIC as GGIG Table 2: information level = grey-level entropy",
                **PIC_SPEC, thresholds=PAIR_THRESHOLDS, min_pred_value=0.5, information="entropy")
register_metric("insertion", insertion, curve_axes=INSERTION_AXES)
register_metric("deletion", deletion, curve_axes=DELETION_AXES)
register_metric("pos_neg", pos_neg, uses_labels=True, curve_axes=POS_NEG_AXES)
register_metric("adp_pic", adp_pic, uses_labels=True)
register_metric("localization", localization, needs_masks=True)
register_metric("grid_localization", grid_localization, consumes="grid")
register_metric("road", road, uses_labels=True, curve_axes=ROAD_AXES, parallel=True)
register_metric("mufidelity", mufidelity)
register_metric("max_sensitivity", max_sensitivity, consumes="explanation")
register_metric("avg_sensitivity", avg_sensitivity, consumes="explanation")
register_metric("completeness", completeness, consumes="explanation")
register_metric("cascading_randomization", cascading_randomization_metric, consumes="explanation")
register_metric("sigma_perturbation", sigma_perturbation_metric, consumes="explanation")

__all__ = ["METRICS", "MetricSpec", "MetricResult", "Curve", "compute", "get_metric", "metric_options",
           "register_metric", "unregister_metric", "sic_aic", "insertion", "deletion", "pos_neg", "adp_pic",
           "localization",
           "grid_localization", "road", "mufidelity", "max_sensitivity", "avg_sensitivity", "completeness",
           "PAIR_THRESHOLDS", "IDGI_THRESHOLDS", "IDGI_BINS", "PIC_AGGREGATION"]
