"""``explain(model, images, method, target, **options)``: the one entry point."""
from __future__ import annotations

import numpy as np

from .explanation import Explanation
from .inputs import load_images, resolve_targets
from .methods import get_method
from .methods.smooth import smooth_attribute, smooth_options
from .checks import positive_int
from .models import DEFAULT_BATCH_SIZE, as_model


def explain(model, images, method: str = "ig", target=None, *, output: str = "logit",
            batch_size: int = DEFAULT_BATCH_SIZE, smooth=None, seed=None, progress="auto",
            preprocess=None, weights="imagenet", output_index=None, **options) -> Explanation:
    """Explain ``target`` (None: each image's top-1 class) of ``model`` on ``images`` with ``method``.

    ``model``: keras.Model, Keras application name, SavedModel directory, .keras file, callable or
    ModelAdapter. ``images``: (H,W,C) or (N,H,W,C) pixels (uint8 or float; numpy, tf.Tensor), PIL
    image(s) or file path(s). ``output``: "logit" or "probability". ``batch_size`` bounds memory.
    ``smooth``: SmoothGrad around the method (True, samples, or dict(samples, noise, magnitude)).
    Other ``options`` go to the method (``steps``, ``baseline``, ``rule``, ``aggregator``, ...).
    """
    positive_int(batch_size, "batch_size")
    m = get_method(method, **options)
    adapter = as_model(model, output=output, preprocess=preprocess, batch_size=batch_size, weights=weights,
                       output_index=output_index)
    arr, single = load_images(images, adapter.input_shape)
    if adapter.input_shape[2] is not None and arr.shape[-1] != adapter.input_shape[2]:
        raise ValueError(f"images must have {adapter.input_shape[2]} channels, got {arr.shape[-1]}")
    targets = resolve_targets(target, len(arr), adapter.num_classes, lambda: adapter.scores(arr))
    if smooth is not None and smooth is not False:
        attr = smooth_attribute(m, adapter, arr, targets, smooth_options(smooth), seed=seed, progress=progress)
    else:
        attr = m.attribute(adapter, arr, targets, progress=progress, seed=seed)
    if not np.all(np.isfinite(attr)):
        raise FloatingPointError(f"method {m.name!r} produced non-finite attributions; check the model and inputs")
    method_name = method if isinstance(method, str) else m.name
    return Explanation(attribution=attr[0] if single else attr, targets=targets[0] if single else targets,
                       method=method_name, options={**m.options, "output": output, "batch_size": batch_size,
                                                    "smooth": smooth, "seed": seed},
                       images=arr[0] if single else arr, pixel_range=adapter.pixel_range,
                       class_names=adapter.class_names)
