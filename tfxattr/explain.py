"""``explain(model, images, method, targets, **options)``: the one entry point."""
from __future__ import annotations

import numpy as np

from .checks import renamed
from .explanation import Explanation
from .inputs import DEFAULT_BACKGROUND, load_images, read_range, resolve_targets
from .methods import Method, get_method
from .methods.base import check_architecture
from .methods.smooth import smooth_options
from .models.build import model_adapter
from .models.options import ModelOptions, takes_model_options
from .progress import check_progress


@takes_model_options(others=True)
def explain(model, images, method="ig", targets=None, *, smooth=None, seed=None, progress="auto",
            background: str = DEFAULT_BACKGROUND, **options) -> Explanation:
    """Explain ``targets`` (None: each image's top-1 class) of ``model`` on ``images`` with ``method``.

    ``model``: anything a model source recognises (``tfxattr models`` lists them: keras.Model, Keras
    application name, "demo", SavedModel directory, .keras file, callable) or a ModelAdapter.
    ``images``: (H,W,C) or (N,H,W,C) pixels (uint8 or float; numpy, tf.Tensor), PIL image(s) or file
    path(s). ``method``: a registered name, a spec with options
    (``"smooth:inner=ig+idgi,samples=10"``) or a Method. ``targets``: class indices or class names, one for
    every image or one per image. ``smooth``: shortcut for the ``smooth`` method wrapping
    ``method`` (True, samples, or dict(samples, noise, magnitude)). ``seed``: the random draws of the
    method (noise, masks, baselines).
    ``pixel_range`` defaults to 0..255 for files and PIL images (they are read as 8-bit pixels; uint16
    arrays too, brought to 0..255 as 16-bit files are), else to the model's input range, else to the
    conventional range the values lie in; a warning names ``pixel_range`` when the images cannot be in its
    scale (8-bit vs unit, 16-bit, mean-subtracted). Files are turned upright by their EXIF orientation;
    ``background`` ("white" or "black") is what transparent pixels are composited over. ``precision``: path
    points, f-values and sums stay float32/float64 (:mod:`tfxattr.models.precision`); ``strategy``: each
    chunk of ``batch_size`` rows is split across its replicas, with the single-device results
    (:mod:`tfxattr.models.devices`). The other ``options`` go to the method (``steps``, ``baseline``,
    ``rule``, ``aggregator``, ...).
    """
    renamed(options, ["targets"], "explain()")
    model_options, options = ModelOptions.take(options, "explain()")
    check_progress(progress)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    m = _method(method, smooth, options)
    declared = model_options.pixel_range
    if declared is None:  # files are read as 0..255
        model_options = model_options.replace(pixel_range=read_range(images))
    adapter = model_adapter(model, model_options)
    check_architecture(m, adapter)
    arr, single = load_images(images, adapter.input_shape, background=background, pixel_range=declared)
    adapter = adapter.for_images(arr)
    adapter.check_pixels(arr)
    if adapter.input_shape[2] is not None and arr.shape[-1] != adapter.input_shape[2]:
        raise ValueError(f"images must have {adapter.input_shape[2]} channels, got {arr.shape[-1]}")
    forward = []  # (scores, probabilities) from one forward pass, made only when needed

    def scores():
        if not forward:
            forward.extend(adapter.scores_and_probabilities(arr))
        return forward[0]
    targets = resolve_targets(targets, len(arr), adapter.num_classes, scores, class_names=adapter.class_names)
    both = None if forward else m.attribute_and_scores(adapter, arr, targets, progress=progress, seed=seed)
    if both is None:
        scores()
        rows = np.arange(len(arr))
        explained, probability = forward[0][rows, targets], forward[1][rows, targets]
        attr = m.attribute(adapter, arr, targets, progress=progress, seed=seed)
    else:  # the method computed f_c and the probability on its way (Grad-CAM): no forward pass of explain's own
        attr, explained, probability = both
    if not np.all(np.isfinite(attr)):
        raise FloatingPointError(f"method {m.name!r} produced non-finite attributions; check the model and inputs")
    return Explanation(attribution=attr[0] if single else attr, targets=targets[0] if single else targets,
                       method=m.name, options=dict(m.options),
                       run={"output": model_options.output, "batch_size": model_options.batch_size, "seed": seed,
                            "model": adapter.name,
                            "input_range": None if adapter.input_range is None else list(adapter.input_range),
                            "head": adapter.head, "precision": adapter.precision},
                       images=arr[0] if single else arr, pixel_range=adapter.pixel_range,
                       class_names=adapter.class_names, scores=explained[0] if single else explained,
                       probabilities=probability[0] if single else probability)


def _method(method, smooth, options) -> Method:
    """The method to run; ``smooth`` wraps it in the registered ``smooth`` method."""
    if smooth is None or smooth is False:
        return get_method(method, **options)
    wrapped = get_method(method, **options)  # bad options fail with the wrapped method's own message
    return get_method("smooth", inner=wrapped, **smooth_options(smooth))
