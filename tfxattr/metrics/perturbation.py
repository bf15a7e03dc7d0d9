"""Perturbation metrics: insertion / deletion (IDGI Sec. 4.3), POS / NEG (IIA Sec. 4), ADP / PIC (IIA Sec. 4).

All perturbed images of an image (every step), and of several images, go through the model in one
call chunked by ``batch_size``. Pixels are ordered by the map, highest first, ties in raster order;
"removed" pixels take the value of a baseline image (``baseline``: "black" = the low end of the model's
pixel range, "white", "blur" = Gaussian blur of ``blur_sigma``, a number, or an array). Probabilities
are the softmax of the target class.

Where the papers leave a choice open, this module takes:

* insertion / deletion: ``round(f * H * W)`` pixels at f = 0, 0.05, ..., 1 (21 images), all channels of
  a pixel together; area by the trapezoid rule over f in [0, 1]; "ratio" divides each point by the
  probability on the unmodified image (IDGI Table 1's "probability ratio").
* POS / NEG: IIA (Sec. 4) cites Chefer et al. (2021) and defers the definition to an appendix that is not
  public; its own repository (github.com/iia-iccv23/iia) holds no evaluation code. The sources read:
  Chefer et al.'s ``baselines/ViT/pertubation_eval_from_hdf5.py`` (github.com/hila-chefer/
  Transformer-Explainability) and the IIA group's CNN version of it, ``cnn_baselines/evaluation/
  perturbation_eval_from_hdf5_all_comb_by_method.py`` (github.com/LTX-Code/LTX). Both: the map is
  flattened over H*W, the top ``int(f * H * W)`` pixels (``torch.topk``; NEG negates the map first) are set
  to 0 in all channels of the [0, 1] image *before* normalisation (black), for f = 0.1, ..., 0.9; a hit is
  "top-1 class == the ground-truth label" (the label even when the map explains the predicted class).
  The LTX code then prepends the unperturbed accuracy at f = 0 and takes ``sklearn.metrics.auc`` over
  ``arange(0, 1, 0.1)`` times 100, of the hit rate averaged over images: the area over f in [0, 0.9] of the
  mean curve = the mean of the per-image areas (``aggregation="mean"``). This module does exactly that
  (ties in raster order instead of ``topk``'s unspecified order); ``measure="probability"`` is that code's
  "Proba AUC" (the label's softmax probability).
* ADP / PIC: Grad-CAM++ (Chattopadhay et al. 2018, Sec. 6.1, Eqs. 21-22): ADP = 100/N sum max(0, Y - O)/Y,
  PIC = 100/N sum [Y < O], with Y the class score on the image and O on the image masked by the map. As
  the IIA group's ``cnn_baselines/evaluation/adp_pic_eval_from_hdf5.py`` (github.com/LTX-Code/LTX): the
  [0, 1] image times the map (black baseline), softmax probabilities of the ground-truth label (``labels``,
  default the targets), mean over images. Their maps are stored already scaled to [0, 1]; here the map is
  min-max scaled per image (the identity on such maps).

Every metric here skips constant maps (:data:`~tfxattr.metrics.inputs.CONSTANT_MAP`).
"""
from __future__ import annotations

import numpy as np

from ..checks import number, one_of
from ..inputs import resolve_baseline
from .inputs import metric_inputs
from .perturbed import check_fractions, check_labels, check_step, gather, pixel_ranks, predict_perturbed
from .result import Curve, MetricResult, skip_images

#: Chefer et al. 2021 / LTX ``perturbation_steps``: fractions of pixels removed, plus the unperturbed image at 0.
POS_NEG_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def insertion(model, images, maps, targets=None, masks=None, batch_size=32, *, step=0.05, baseline="black",
              blur_sigma=20.0, progress=False) -> MetricResult:
    """Insertion (IDGI Sec. 4.3): reveal the top pixels in ``step`` fractions over ``baseline``.

    Scores "insertion" (area under the class probability vs fraction revealed, 0..1) and
    "insertion_ratio" (the same curve divided by the probability on the original image); higher is
    better. ``masks`` is not used.
    """
    return _ordered_curve("insertion", True, model, images, maps, targets, masks, batch_size, step, baseline,
                          blur_sigma, progress)


def deletion(model, images, maps, targets=None, masks=None, batch_size=32, *, step=0.05, baseline="black",
             blur_sigma=20.0, progress=False) -> MetricResult:
    """Deletion (Petsiuk et al. 2018, IDGI's insertion reversed): replace the top pixels by ``baseline``.

    Scores "deletion" and "deletion_ratio" (areas as for insertion); lower is better.
    """
    return _ordered_curve("deletion", False, model, images, maps, targets, masks, batch_size, step, baseline,
                          blur_sigma, progress)


def _ordered_curve(name, insert, model, images, maps, targets, masks, batch_size, step, baseline, blur_sigma,
                   progress) -> MetricResult:
    fractions = check_step(step)
    number(blur_sigma, "blur_sigma", 0.0)
    inputs = metric_inputs(model, images, maps, targets, masks, batch_size)
    n, h, w, _ = inputs.images.shape
    baselines = resolve_baseline(baseline, inputs.images, inputs.adapter.pixel_range, blur_sigma)
    counts = np.round(fractions * h * w).astype(int)
    revealed = lambda i: pixel_ranks(inputs.maps[i:i + 1])[0][None] < counts[:, None, None]  # noqa: E731
    probs = predict_perturbed(inputs.adapter, len(inputs.images), len(fractions), progress, name, lambda i: (np.where, (
        revealed(i)[..., None], *((inputs.images[i], baselines[i]) if insert else (baselines[i], inputs.images[i])))))
    p = gather(probs, inputs.targets)
    p_orig = inputs.probabilities[np.arange(n), inputs.targets]
    ratio_skips = {int(i): "the class probability on the original image is 0" for i in np.flatnonzero(p_orig <= 0)}
    ratio = np.where(p_orig[:, None] > 0, p / np.where(p_orig > 0, p_orig, 1.0)[:, None], np.nan)
    curves = {name: Curve(fractions, p), f"{name}_ratio": Curve(fractions, ratio)}
    scores = {k: np.trapezoid(c.y, c.x, axis=1) for k, c in curves.items()}
    return skip_images(MetricResult(name, scores, {k: insert for k in scores}, curves=curves,
                                    skipped={f"{name}_ratio": ratio_skips}, aggregation="mean",
                                    options=dict(step=step, baseline=_shown(baseline), blur_sigma=blur_sigma),
                                    targets=inputs.targets, extras={"pixel_counts": counts}), inputs.constant)


def pos_neg(model, images, maps, targets=None, masks=None, batch_size=32, *, fractions=POS_NEG_FRACTIONS,
            baseline="black", blur_sigma=20.0, measure="accuracy", labels=None, progress=False) -> MetricResult:
    """POS / NEG perturbation AUC (IIA Sec. 4, after Chefer et al. 2021), in percent.

    For x = 0 and each of ``fractions``, ``int(x*H*W)`` pixels are set to ``baseline`` - the most relevant
    first (POS, lower is better) or the least relevant first (NEG, higher is better) - and the curve is
    whether the top-1 class still equals the label (``measure="accuracy"``) or the label's probability
    (``measure="probability"``); ``labels`` default to the targets. Score: 100 * area over x in [0, 0.9].
    Source: LTX-Code/LTX ``cnn_baselines/evaluation/perturbation_eval_from_hdf5_all_comb_by_method.py``
    after hila-chefer/Transformer-Explainability ``baselines/ViT/pertubation_eval_from_hdf5.py`` (module
    docstring).
    """
    fractions = check_fractions(fractions, "fractions")
    one_of(measure, "measure", ("accuracy", "probability"))
    number(blur_sigma, "blur_sigma", 0.0)
    inputs = metric_inputs(model, images, maps, targets, masks, batch_size)
    n, h, w, _ = inputs.images.shape
    labels = inputs.targets if labels is None else check_labels(labels, n)
    baselines = resolve_baseline(baseline, inputs.images, inputs.adapter.pixel_range, blur_sigma)
    x = np.concatenate([[0.0], fractions])
    counts = (x * h * w).astype(int)
    scores, curves = {}, {}
    for name, sign in (("pos", 1.0), ("neg", -1.0)):
        removed = lambda i, s=sign: pixel_ranks(s * inputs.maps[i:i + 1])[0][None] < counts[:, None, None]  # noqa: E731
        probs = predict_perturbed(inputs.adapter, len(inputs.images), len(x), progress, name,
                                  lambda i, r=removed: (np.where, (r(i)[..., None], baselines[i], inputs.images[i])))
        y = (np.argmax(probs, -1) == labels[:, None]).astype(np.float64) if measure == "accuracy" \
            else gather(probs, labels)
        curves[name] = Curve(x, y, scale=100.0)
        scores[name] = 100.0 * np.trapezoid(y, x, axis=1)
    return skip_images(MetricResult("pos_neg", scores, {"pos": False, "neg": True}, curves=curves,
                                    aggregation="mean",
                                    options=dict(fractions=fractions.tolist(), baseline=_shown(baseline),
                                                 blur_sigma=blur_sigma, measure=measure),
                                    targets=inputs.targets, extras={"pixel_counts": counts, "labels": labels}),
                       inputs.constant)


def adp_pic(model, images, maps, targets=None, masks=None, batch_size=32, *, baseline="black",
            blur_sigma=20.0, labels=None) -> MetricResult:
    """Average Drop % (ADP, lower is better) and % Increase in Confidence (PIC, higher is better).

    Grad-CAM++ (Chattopadhay et al. 2018, Sec. 6.1, Eqs. 21-22) as IIA reports them (LTX-Code/LTX
    ``cnn_baselines/evaluation/adp_pic_eval_from_hdf5.py``): the map is min-max scaled to [0, 1] per image
    and blends each pixel toward ``baseline`` (pixel = baseline + m * (pixel - baseline); "black" = the image times
    the map); Y = the label's probability on the image, O = on the blended image (``labels`` default to
    the targets; IIA's "Predicted" setting passes the ground truth). Per image: adp = 100 * max(0, Y - O)
    / Y, pic = 100 * [O > Y]; the mean over images is the paper's number. Constant maps are skipped.
    """
    number(blur_sigma, "blur_sigma", 0.0)
    inputs = metric_inputs(model, images, maps, targets, masks, batch_size)
    n = len(inputs.images)
    labels = inputs.targets if labels is None else check_labels(labels, n)
    flat = inputs.maps.reshape(n, -1).astype(np.float64)
    lo, span = flat.min(1), np.ptp(flat, axis=1)
    m = ((flat - lo[:, None]) / np.where(span > 0, span, 1.0)[:, None]).reshape(inputs.maps.shape)
    baselines = resolve_baseline(baseline, inputs.images, inputs.adapter.pixel_range, blur_sigma)
    blended = (baselines + m[..., None] * (inputs.images - baselines)).astype(np.float32)
    y = inputs.probabilities[np.arange(n), labels].astype(np.float64)
    o = inputs.adapter.probabilities(blended)[np.arange(n), labels].astype(np.float64)
    zero = {int(i): "the class probability on the original image is 0" for i in np.flatnonzero(y <= 0)}
    adp = np.where(y <= 0, np.nan, 100.0 * np.maximum(0.0, y - o) / np.where(y > 0, y, 1.0))
    pic = 100.0 * (o > y)
    result = MetricResult("adp_pic", {"adp": adp, "pic": pic}, {"adp": False, "pic": True},
                          skipped={"adp": zero, "pic": {}}, aggregation="mean",
                          options=dict(baseline=_shown(baseline), blur_sigma=blur_sigma),
                          targets=inputs.targets, extras={"original_probability": y, "masked_probability": o,
                                                          "labels": labels})
    return skip_images(result, inputs.constant)


def _shown(baseline):
    """A baseline as a result's options record it: its name, or "array" for pixels given as an array."""
    return baseline if isinstance(baseline, str) else "array"
