"""What a metric was given, normalised once: :func:`metric_inputs` turns ``model, images, maps, targets,
masks`` (arrays, tensors, file paths, or an :class:`~tfxattr.explanation.Explanation` as ``maps``) into
one :class:`MetricInputs`, the only structure a metric reads.

An Explanation given as ``maps`` brings everything it knows, to every metric alike:

* its **images** (``images=None``) and its **targets** (``targets=None``; given ones must be the same);
* its **pixel range**: a model that is not yet a ``ModelAdapter`` is built to read the Explanation's
  images in their own range (``explain(..., pixel_range=(0, 1))`` on images / 255 is scored as the
  0..255 one); an adapter in another range is refused rather than silently misread;
* its **output** (logit or probability): metrics that re-run the method (``consumes="explanation"``)
  explain the same scalar; maps metrics score class probabilities, which do not depend on it;
* its **map**: ``Explanation.map``, the one channel reduction (:mod:`tfxattr.reduction`) that
  ``tfxattr eval``, the figures and exported models use; and its attribution with channels, method,
  options and seed for the metrics that need them.

(N,H,W,C) or (N,H,W,1) arrays given as ``maps`` are reduced by the same function ("auto": a single
channel kept signed, several summed as |a|).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from .. import checks
from ..checks import one_of, positive_int
from ..explanation import Explanation
from ..inputs import load_images, resolve_targets
from ..methods import get_method
from ..models import ModelAdapter, as_model
from ..models.build import model_adapter
from ..models.options import NAMES as MODEL_OPTIONS
from ..models.options import ModelOptions
from ..reduction import reduce_channels

#: the skip reason of a map with one value everywhere (all-zero included): it ranks no pixel above another
CONSTANT_MAP = "constant map"
#: the ``consumes`` of the metrics that take their inputs here (``MetricSpec.consumes``): a map per image, or
#: the Explanation itself (its method is re-run by the metric)
CONSUMES = ("maps", "explanation")
#: compute()'s model defaults: the maps metrics score class probabilities
METRIC_MODEL_DEFAULTS = {"output": "probability"}


@dataclass
class MetricInputs:
    """Checked inputs, whatever a metric was given.

    ``adapter``: the model (None for metrics that need none), reading ``images`` in their range;
    ``images``: float32 pixels (N,H,W,C); ``maps``: float (N,H,W), the channel-reduced maps (float32
    stays float32); ``targets``: int32 (N,); ``probabilities``: softmax (N,K) of the unmodified images
    (maps metrics with a model; else None); ``masks``: bool (N,H,W) or None; ``constant``: {image index:
    :data:`CONSTANT_MAP`} for the maps that rank nothing (:func:`constant_maps`). From an Explanation:
    ``attribution`` float32 (N,H,W,C) with its channels, the ``explanation`` and the ``seed`` it was
    made with (else None).
    """
    adapter: Optional[ModelAdapter]
    images: np.ndarray
    maps: np.ndarray
    targets: Optional[np.ndarray]
    probabilities: Optional[np.ndarray]
    masks: Optional[np.ndarray]
    constant: Dict[int, str] = field(default_factory=dict)
    attribution: Optional[np.ndarray] = None
    explanation: Optional[Explanation] = None
    seed: Optional[int] = None

    def method(self):
        """The Method that made the Explanation (its registered name and options)."""
        if self.explanation is None:
            raise ValueError("these inputs hold no Explanation: no method made the maps")
        return get_method(self.explanation.method, **self.explanation.options)


def metric_inputs(model, images, maps, targets=None, masks=None, batch_size=32, *, consumes: str = "maps",
                  needs_model: bool = True, needs_masks: bool = False, metric: str = "this metric") -> MetricInputs:
    """Check and convert what a metric was given (module docstring); run the model once on the unmodified
    images when the metric reads maps.

    ``maps``: (N,H,W), (N,H,W,C) or (N,H,W,1) (reduced by :func:`tfxattr.reduction.reduce_channels`), one
    image's (H,W)/(H,W,C), or an :class:`Explanation`. ``consumes="explanation"``: the metric re-runs the
    Explanation's method, so ``maps`` must be one, and the adapter explains its output. ``needs_model``,
    ``needs_masks``: refuse a missing model / masks. ``metric`` names the metric in errors.
    """
    positive_int(batch_size, "batch_size")
    one_of(consumes, "consumes", CONSUMES)
    explanation = maps if isinstance(maps, Explanation) else None
    if consumes == "explanation" and explanation is None:
        raise ValueError(f"{metric} needs the Explanation itself as maps (tfxattr.explain's result: the "
                         f"attribution with its channels and the method that made it), got {type(maps).__name__}")
    if explanation is not None and images is None:
        images = explanation.images
        if images is None:
            raise ValueError("images are required: the Explanation holds none")
    if images is None:
        raise ValueError("images are required (pixels, (N,H,W,C))")
    adapter = _adapter(model, explanation, consumes, batch_size) if needs_model else None
    arr, _ = load_images(images, adapter.input_shape if adapter is not None else None)
    if adapter is not None:
        adapter.check_pixels(arr)
    attribution = None
    if explanation is not None:
        attribution = _attribution(explanation, arr.shape)
        maps = reduce_channels(attribution, explanation.reduce)
    maps = check_maps(maps, arr.shape)
    masks = check_masks(masks, arr.shape, required=needs_masks)
    probs = None
    if adapter is not None and consumes == "maps":
        probs = adapter.probabilities(arr)
    classes = adapter.num_classes if adapter is not None else np.iinfo(np.int32).max
    names = adapter.class_names if adapter is not None else None
    if explanation is not None:
        resolved = resolve_targets(np.atleast_1d(explanation.targets), len(arr), classes)
        if targets is not None:
            given = resolve_targets(targets, len(arr), classes, class_names=names)
            if not np.array_equal(given, resolved):
                raise ValueError(f"targets {given.tolist()} differ from the classes the Explanation explains "
                                 f"{resolved.tolist()}")
    elif adapter is not None:
        resolved = resolve_targets(targets, len(arr), classes, lambda: probs, class_names=names)
    else:
        resolved = None if targets is None else resolve_targets(targets, len(arr), classes, class_names=names)
    seed = explanation.run.get("seed") if explanation is not None else None
    return MetricInputs(adapter, arr, maps, resolved, probs, masks, constant_maps(maps), attribution, explanation,
                        seed)


def metric_model(model, metric_options, keywords: dict):
    """``(model, batch_size, the metric's keywords)`` from ``compute()``'s ``keywords``: the model options
    (:class:`~tfxattr.models.ModelOptions`, output "probability" by default) other than ``batch_size`` build
    the model's adapter here (given none, the metric builds it, with an Explanation's ranges); a model option
    the metric takes itself (``metric_options``: mufidelity's ``output``, the sanity checks' ``output`` and
    ``preprocess``) goes to the metric, with its other options."""
    own = {key: keywords.pop(key) for key in list(keywords) if key in metric_options and key in MODEL_OPTIONS}
    options, keywords = ModelOptions.take(keywords, "compute()", **METRIC_MODEL_DEFAULTS)
    changed = [name for name in options.changed(**METRIC_MODEL_DEFAULTS) if name != "batch_size"]
    if changed and model is not None:
        if isinstance(model, ModelAdapter):
            raise ValueError(f"{' and '.join(changed)} cannot be changed on an existing ModelAdapter; pass the raw "
                             "model")
        model = model_adapter(model, options)
    return model, options.batch_size, {**keywords, **own}


def _adapter(model, explanation, consumes, batch_size) -> ModelAdapter:
    """The model as an adapter reading the images in their range (the Explanation's, when one is given)."""
    if model is None:
        raise ValueError("model is required for this metric")
    output = explanation.run.get("output", "logit") if consumes == "explanation" else None
    pixel_range = None if explanation is None else checks.pixel_range(explanation.pixel_range)
    if isinstance(model, ModelAdapter):
        if pixel_range is not None and tuple(model.pixel_range) != pixel_range:
            raise ValueError(f"the Explanation's images are in {pixel_range} but the ModelAdapter reads images in "
                             f"{tuple(model.pixel_range)}: pass the model itself (it is rebuilt for the "
                             f"Explanation's range) or an adapter built with pixel_range={pixel_range}")
        return model.with_options(output=output, batch_size=batch_size)
    input_range = None if explanation is None else explanation.run.get("input_range")
    return as_model(model, output=output or "probability", batch_size=batch_size, pixel_range=pixel_range,
                    input_range=input_range)


def _attribution(explanation: Explanation, image_shape) -> np.ndarray:
    """float32 (N,H,W,C) attribution of ``explanation``, checked against the images (N,H,W,C)."""
    attribution = np.asarray(explanation.attribution, np.float32)
    attribution = attribution[None] if explanation.single else attribution
    if attribution.ndim != 4 or attribution.shape[:3] != tuple(image_shape[:3]):
        raise ValueError(f"the Explanation's attribution {attribution.shape} does not match the images "
                         f"{tuple(image_shape)}: expected (N, H, W, C) with (N, H, W) = {tuple(image_shape[:3])}")
    if not np.all(np.isfinite(attribution)):
        raise ValueError("the Explanation's attribution contains non-finite values (NaN or inf)")
    return attribution


def constant_maps(maps) -> Dict[int, str]:
    """{i: :data:`CONSTANT_MAP`} for every map (N,H,W) with one value everywhere (all-zero included).

    Such a map orders no pixel before another, so any score of it would measure the tie-breaking rule
    (raster order), not the attribution: every maps metric skips it (issue 9, item 6).
    """
    flat = np.asarray(maps).reshape(len(maps), -1)
    return {int(i): CONSTANT_MAP for i in np.flatnonzero(np.all(flat == flat[:, :1], axis=1))}


def check_maps(maps, image_shape) -> np.ndarray:
    """float (N,H,W) attribution maps (float32 stays float32) for images of ``image_shape`` (N,H,W,C);
    an (N,H,W,C) or (N,H,W,1) attribution is reduced by :func:`tfxattr.reduction.reduce_channels`."""
    n, h, w, c = image_shape
    if maps is None:
        raise ValueError("maps are required: attribution maps (N,H,W) or (N,H,W,C)")
    arr = np.asarray(maps.numpy() if hasattr(maps, "numpy") else maps)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"maps must be numeric, got dtype {arr.dtype}")
    if arr.dtype not in (np.float32, np.float64):  # keep float32 maps as they are: PAIR's quantiles use the map's dtype
        arr = arr.astype(np.float64)
    if n == 1 and arr.shape in ((h, w), (h, w, c), (h, w, 1)):
        arr = arr[None]
    if arr.ndim == 4 and arr.shape[-1] in (c, 1) and arr.shape[:3] == (n, h, w):
        arr = reduce_channels(arr)
    if arr.shape != (n, h, w):
        raise ValueError(f"maps must have shape (N, H, W) = {(n, h, w)}, (N, H, W, C) = {(n, h, w, c)} or "
                         f"(N, H, W, 1) to match the images, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("maps contain non-finite values (NaN or inf)")
    return arr


def check_masks(masks, image_shape, required=False) -> Optional[np.ndarray]:
    """bool (N,H,W) object masks, or None when not given (an error if ``required``)."""
    n, h, w, _ = image_shape
    if masks is None:
        if required:
            raise ValueError("masks are required for this metric: object masks, bool (N, H, W)")
        return None
    arr = np.asarray(masks.numpy() if hasattr(masks, "numpy") else masks)
    if n == 1 and arr.shape == (h, w):
        arr = arr[None]
    if arr.shape != (n, h, w):
        raise ValueError(f"masks must have shape (N, H, W) = {(n, h, w)} to match the images, got {arr.shape}")
    if arr.dtype != bool:
        if not np.all(np.isin(arr, (0, 1))):
            raise ValueError("masks must be boolean (or 0/1)")
        arr = arr.astype(bool)
    return arr
