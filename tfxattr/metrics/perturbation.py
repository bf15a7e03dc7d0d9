"""Perturbation metrics: insertion / deletion (IDGI Sec. 4.3), POS / NEG (IIA Sec. 4), ADP / PIC (IIA Sec. 4).

All perturbed images of an image (every step), and of several images, go through the model in one
call chunked by ``batch_size``. Pixels are ordered by the map, highest first, ties in raster order;
"removed" pixels take the value of a base image (``base``: "black" = the low end of the model's
pixel range, "white", "blur" = Gaussian blur of ``blur_sigma``, a number, or an array). Probabilities
are the softmax of the target class.

Where the papers leave a choice open, this module takes:

* insertion / deletion: ``round(f * H * W)`` pixels at f = 0, 0.05, ..., 1 (21 images), all channels of
  a pixel together; area by the trapezoid rule over f in [0, 1]; "ratio" divides each point by the
  probability on the unmodified image (IDGI Table 1's "probability ratio").
* POS / NEG: IIA only cites Chefer et al. (2021); as in that evaluation code, ``int(f * H * W)`` pixels
  are blacked out (in pixel space, before the model's preprocessing) for f = 0.1 ... 0.9, the curve also
  holds the unperturbed image at f = 0, a hit is "top-1 class == label", and the score is 100 x the
  area over f in [0, 0.9]. The paper's number is the area of the mean hit curve = the mean of the
  per-image areas (``aggregation="mean"``). In IIA's "Predicted" setting the maps explain the predicted
  class but hits are still checked against the ground truth: pass ``labels=`` for that.
* ADP / PIC (Grad-CAM++ Sec. 6.1): the map, min-max scaled per image, multiplies the image (black base);
  PIC counts strict increases of the class probability.
"""
from __future__ import annotations

import numpy as np

from ..checks import number, one_of
from ..inputs import resolve_baseline
from ..progress import progress_bar
from .base import Curve, MetricResult, check_fractions, check_step, gather, image_groups, pixel_ranks, prepare

#: IIA (following Chefer et al. 2021): fractions of pixels removed, plus the unperturbed image at 0.
POS_NEG_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def insertion(model, images, maps, targets=None, masks=None, batch_size=32, *, step=0.05, base="black",
              blur_sigma=20.0, progress=False) -> MetricResult:
    """Insertion (IDGI Sec. 4.3): reveal the top pixels in ``step`` fractions over ``base``.

    Scores "insertion" (area under the class probability vs fraction revealed, 0..1) and
    "insertion_ratio" (the same curve divided by the probability on the original image); higher is
    better. ``masks`` is not used.
    """
    return _ordered_curve("insertion", True, model, images, maps, targets, masks, batch_size, step, base,
                          blur_sigma, progress)


def deletion(model, images, maps, targets=None, masks=None, batch_size=32, *, step=0.05, base="black",
             blur_sigma=20.0, progress=False) -> MetricResult:
    """Deletion (Petsiuk et al. 2018, IDGI's insertion reversed): replace the top pixels by ``base``.

    Scores "deletion" and "deletion_ratio" (areas as for insertion); lower is better.
    """
    return _ordered_curve("deletion", False, model, images, maps, targets, masks, batch_size, step, base,
                          blur_sigma, progress)


def _ordered_curve(name, insert, model, images, maps, targets, masks, batch_size, step, base, blur_sigma,
                   progress) -> MetricResult:
    fractions = check_step(step)
    number(blur_sigma, "blur_sigma", 0.0)
    inputs = prepare(model, images, maps, targets, masks, batch_size)
    n, h, w, _ = inputs.images.shape
    bases = resolve_baseline(base, inputs.images, inputs.adapter.pixel_range, blur_sigma)
    counts = np.round(fractions * h * w).astype(int)
    revealed = lambda i: pixel_ranks(inputs.maps[i:i + 1])[0][None] < counts[:, None, None]  # noqa: E731
    probs = _predict(inputs, len(fractions), progress, name, lambda i: np.where(
        revealed(i)[..., None], *((inputs.images[i], bases[i]) if insert else (bases[i], inputs.images[i]))))
    p = gather(probs, inputs.targets)
    p_orig = inputs.probabilities[np.arange(n), inputs.targets]
    ratio_skips = {int(i): "the class probability on the original image is 0" for i in np.flatnonzero(p_orig <= 0)}
    ratio = np.where(p_orig[:, None] > 0, p / np.where(p_orig > 0, p_orig, 1.0)[:, None], np.nan)
    curves = {name: Curve(fractions, p), f"{name}_ratio": Curve(fractions, ratio)}
    scores = {k: np.trapezoid(c.y, c.x, axis=1) for k, c in curves.items()}
    return MetricResult(name, scores, {k: insert for k in scores}, curves=curves,
                        skipped={f"{name}_ratio": ratio_skips}, aggregation="mean",
                        options=dict(step=step, base=base if isinstance(base, str) else "array",
                                     blur_sigma=blur_sigma),
                        targets=inputs.targets, extras={"pixel_counts": counts})


def pos_neg(model, images, maps, targets=None, masks=None, batch_size=32, *, fractions=POS_NEG_FRACTIONS,
            base="black", blur_sigma=20.0, measure="accuracy", labels=None, progress=False) -> MetricResult:
    """POS / NEG perturbation AUC (IIA Sec. 4, after Chefer et al. 2021), in percent.

    For x = 0 and each of ``fractions``, ``int(x*H*W)`` pixels are set to ``base`` - the most relevant
    first (POS, lower is better) or the least relevant first (NEG, higher is better) - and the curve is
    whether the top-1 class still equals the label (``measure="accuracy"``; ``labels`` default to the
    targets) or the target's probability (``measure="probability"``). Score: 100 * area over x in [0, 0.9].
    """
    fractions = check_fractions(fractions, "fractions")
    one_of(measure, "measure", ("accuracy", "probability"))
    number(blur_sigma, "blur_sigma", 0.0)
    inputs = prepare(model, images, maps, targets, masks, batch_size)
    n, h, w, _ = inputs.images.shape
    labels = inputs.targets if labels is None else _labels(labels, n)
    bases = resolve_baseline(base, inputs.images, inputs.adapter.pixel_range, blur_sigma)
    x = np.concatenate([[0.0], fractions])
    counts = (x * h * w).astype(int)
    scores, curves = {}, {}
    for name, sign in (("pos", 1.0), ("neg", -1.0)):
        removed = lambda i, s=sign: pixel_ranks(s * inputs.maps[i:i + 1])[0][None] < counts[:, None, None]  # noqa: E731
        probs = _predict(inputs, len(x), progress, name,
                         lambda i, r=removed: np.where(r(i)[..., None], bases[i], inputs.images[i]))
        y = (np.argmax(probs, -1) == labels[:, None]).astype(np.float64) if measure == "accuracy" \
            else gather(probs, inputs.targets)
        curves[name] = Curve(x, y, scale=100.0)
        scores[name] = 100.0 * np.trapezoid(y, x, axis=1)
    return MetricResult("pos_neg", scores, {"pos": False, "neg": True}, curves=curves, aggregation="mean",
                        options=dict(fractions=fractions.tolist(), base=base if isinstance(base, str) else "array",
                                     blur_sigma=blur_sigma, measure=measure),
                        targets=inputs.targets, extras={"pixel_counts": counts, "labels": labels})


def adp_pic(model, images, maps, targets=None, masks=None, batch_size=32, *, base="black",
            blur_sigma=20.0) -> MetricResult:
    """Average Drop % (ADP, lower is better) and % Increase in Confidence (PIC, higher is better).

    Grad-CAM++ (Chattopadhay et al. 2018) as IIA reports them: the map is min-max scaled to [0, 1]
    per image and blends each pixel toward ``base`` (pixel = base + m * (pixel - base); "black" =
    the image times the map); Y = class probability on the image, O = on the blended image.
    Per image: adp = 100 * max(0, Y - O) / Y, pic = 100 * [O > Y]; the mean over images is the
    paper's number. A constant map (no ordering) is skipped.
    """
    number(blur_sigma, "blur_sigma", 0.0)
    inputs = prepare(model, images, maps, targets, masks, batch_size)
    n = len(inputs.images)
    flat = inputs.maps.reshape(n, -1).astype(np.float64)
    lo, span = flat.min(1), np.ptp(flat, axis=1)
    constant = span <= 0
    m = ((flat - lo[:, None]) / np.where(constant, 1.0, span)[:, None]).reshape(inputs.maps.shape)
    bases = resolve_baseline(base, inputs.images, inputs.adapter.pixel_range, blur_sigma)
    blended = (bases + m[..., None] * (inputs.images - bases)).astype(np.float32)
    t = inputs.targets
    y = inputs.probabilities[np.arange(n), t].astype(np.float64)
    o = inputs.adapter.probabilities(blended)[np.arange(n), t].astype(np.float64)
    skipped = {int(i): "the map is constant" for i in np.flatnonzero(constant)}
    zero = {int(i): "the class probability on the original image is 0" for i in np.flatnonzero(y <= 0)}
    adp = np.where(constant | (y <= 0), np.nan, 100.0 * np.maximum(0.0, y - o) / np.where(y > 0, y, 1.0))
    pic = np.where(constant, np.nan, 100.0 * (o > y))
    return MetricResult("adp_pic", {"adp": adp, "pic": pic}, {"adp": False, "pic": True},
                        skipped={"adp": {**skipped, **zero}, "pic": dict(skipped)}, aggregation="mean",
                        options=dict(base=base if isinstance(base, str) else "array", blur_sigma=blur_sigma),
                        targets=t, extras={"original_probability": y, "masked_probability": o})


def _predict(inputs, per_image, progress, desc, build) -> np.ndarray:
    """(N, per_image, K) probabilities of ``build(i)`` ((per_image, H, W, C) images) for every image i."""
    n = len(inputs.images)
    out = np.empty((n, per_image, inputs.adapter.num_classes), np.float32)
    groups = list(image_groups(n, per_image, inputs.adapter.batch_size))
    with progress_bar(len(groups), desc, progress) as bar:
        for group in groups:
            stack = np.concatenate([build(i) for i in group]).astype(np.float32)
            out[group.start:group.stop] = inputs.adapter.probabilities(stack).reshape(len(group), per_image, -1)
            bar.update()
    return out


def _labels(labels, n) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim == 0:
        arr = np.full(n, int(arr))
    if arr.shape != (n,) or arr.dtype.kind not in "iu":
        raise ValueError(f"labels must be one int or {n} ints (one per image), got {arr.dtype} {arr.shape}")
    return arr.astype(np.int64)
