"""PAIR ``saliency`` interop, both ways.

* :func:`call_model_function` turns any model/adapter into PAIR's ``call_model_function`` contract
  (``INPUT_OUTPUT_GRADIENTS``, ``OUTPUT_LAYER_VALUES``), so every ``saliency.core`` method runs on it.
* :class:`TfxattrSaliency` (and the IDGI shorthands) make any tfxattr method a
  ``saliency.core.CoreSaliency``: ``GetMask`` works with any PAIR ``call_model_function``, so
  ``GetSmoothedMask`` can wrap it and ``saliency.core.XRAI`` can take its mask as ``base_attribution``.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
from saliency.core.base import INPUT_OUTPUT_GRADIENTS, OUTPUT_LAYER_VALUES, CoreSaliency

from .methods import get_method
from .models import as_model

TARGET_KEYS = ("target", "class_idx_str", "class_idx")


def _target_from_args(call_model_args, default):
    if isinstance(call_model_args, dict):
        for key in TARGET_KEYS:
            if key in call_model_args:
                return int(call_model_args[key])
    elif isinstance(call_model_args, (int, np.integer)) and not isinstance(call_model_args, bool):
        return int(call_model_args)
    return default


def call_model_function(model, target=None, **adapter_options):
    """PAIR contract: ``f(x_value_batch, call_model_args=None, expected_keys=None) -> dict``.

    The class explained is ``call_model_args["target"]`` (or ``"class_idx_str"``, or an int
    ``call_model_args``), else ``target``, else each example's top-1 class.
    ``OUTPUT_LAYER_VALUES`` is the explained score f_c (N,); gradients have the batch's shape/dtype.
    """
    adapter = as_model(model, **adapter_options)

    def fn(x_value_batch, call_model_args=None, expected_keys=None):
        x = np.asarray(x_value_batch)
        t = _target_from_args(call_model_args, target)
        targets = (np.argmax(adapter.scores(x), -1) if t is None else np.full(len(x), t)).astype(np.int32)
        values, grads = adapter.values_and_gradients(x.astype(np.float32), targets)
        out = {OUTPUT_LAYER_VALUES: values.numpy()}
        if expected_keys is None or INPUT_OUTPUT_GRADIENTS in expected_keys:
            out[INPUT_OUTPUT_GRADIENTS] = grads.numpy().astype(x.dtype if x.dtype.kind == "f" else np.float32)
        return out

    fn.adapter = adapter
    return fn


class PairEvaluator:
    """Our evaluator protocol (values and gradients of a batch) over a PAIR ``call_model_function``."""

    def __init__(self, call_model_function, call_model_args=None, batch_size=32, target=None,
                 pixel_range=(0.0, 255.0)):
        self.fn = call_model_function
        self.args = call_model_args
        self.batch_size = int(batch_size)
        self.target = _target_from_args(call_model_args, target)
        self.pixel_range = pixel_range

    def _call(self, x, keys):
        out = self.fn(np.asarray(x), call_model_args=self.args, expected_keys=keys)
        missing = [k for k in keys if k not in out]
        if missing:
            raise ValueError(f"call_model_function did not return {missing}")
        return out

    def _scalar_values(self, raw, n):
        v = np.asarray(raw, np.float64)
        if v.ndim == 2 and v.shape[1] > 1:
            if self.target is None:
                raise ValueError("OUTPUT_LAYER_VALUES is (N, classes): pass target=<class> or "
                                 "call_model_args={'target': <class>}")
            v = v[:, self.target]
        v = v.reshape(-1)
        if v.shape != (n,):
            raise ValueError(f"OUTPUT_LAYER_VALUES must give one value per example, got shape {np.shape(raw)}")
        return v

    def values_and_gradients(self, x, targets=None):
        x = np.asarray(x)
        vals, grads = [], []
        for i in range(0, len(x), self.batch_size):
            chunk = x[i:i + self.batch_size]
            out = self._call(chunk, [INPUT_OUTPUT_GRADIENTS, OUTPUT_LAYER_VALUES])
            g = np.asarray(out[INPUT_OUTPUT_GRADIENTS])
            if g.shape != chunk.shape:
                raise ValueError(f"INPUT_OUTPUT_GRADIENTS must have the batch's shape {chunk.shape}, got {g.shape}")
            vals.append(self._scalar_values(out[OUTPUT_LAYER_VALUES], len(chunk)))
            grads.append(g)
        return tf.constant(np.concatenate(vals)), tf.constant(np.concatenate(grads).astype(np.float32))

    def values(self, x, targets=None):
        x = np.asarray(x)
        vals = [self._scalar_values(self._call(x[i:i + self.batch_size], [OUTPUT_LAYER_VALUES])[OUTPUT_LAYER_VALUES],
                                    len(x[i:i + self.batch_size])) for i in range(0, len(x), self.batch_size)]
        return tf.constant(np.concatenate(vals))


class TfxattrSaliency(CoreSaliency):
    """Any tfxattr method as a PAIR ``CoreSaliency``: ``TfxattrSaliency("ig+idgi", steps=200)``.

    ``GetMask(x_value, call_model_function, call_model_args=None, batch_size=32, **options)`` explains
    one unbatched image; ``options`` override the method's (e.g. ``x_steps`` maps to ``steps``,
    ``x_baseline`` to ``baseline`` as in PAIR's signatures).
    """
    method_name = None
    expected_keys = [INPUT_OUTPUT_GRADIENTS, OUTPUT_LAYER_VALUES]

    def __init__(self, method=None, **options):
        self.method_name = method or self.method_name
        if self.method_name is None:
            raise ValueError("TfxattrSaliency needs a method name, e.g. TfxattrSaliency('ig+idgi')")
        get_method(self.method_name, **options)  # fail early on bad options
        self.options = options

    def GetMask(self, x_value, call_model_function, call_model_args=None, batch_size=32, target=None,
                pixel_range=(0.0, 255.0), **options):
        renames = {"x_steps": "steps", "x_baseline": "baseline"}
        opts = {**self.options, **{renames.get(k, k): v for k, v in options.items()}}
        if opts.get("baseline") is None and "baseline" in opts:
            opts["baseline"] = "black"
        method = get_method(self.method_name, **opts)
        x = np.asarray(x_value, np.float32)
        if x.ndim != 3:
            raise ValueError(f"x_value must be one image (H, W, C), got shape {x.shape}")
        evaluator = PairEvaluator(call_model_function, call_model_args, batch_size, target, pixel_range)
        return method.attribute(evaluator, x[None], np.zeros(1, np.int32))[0]


class IntegratedGradientsIDGI(TfxattrSaliency):
    """IG path + IDGI aggregation (left rule) as a PAIR CoreSaliency."""
    method_name = "ig+idgi"


class GuidedIGIDGI(TfxattrSaliency):
    """Guided IG path + IDGI aggregation as a PAIR CoreSaliency."""
    method_name = "guided_ig+idgi"


class BlurIGIDGI(TfxattrSaliency):
    """Blur IG path + IDGI aggregation as a PAIR CoreSaliency."""
    method_name = "blur_ig+idgi"
