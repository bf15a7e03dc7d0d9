"""PAIR ``saliency`` interop, both ways.

* :func:`call_model_function` turns any model/adapter into PAIR's ``call_model_function`` contract
  (``INPUT_OUTPUT_GRADIENTS``, ``OUTPUT_LAYER_VALUES``), so every ``saliency.core`` method runs on it.
* :class:`PairEvaluator` is the other way round: any PAIR ``call_model_function`` as our
  :class:`~tfxattr.models.contracts.GradientEvaluator`, per-row targets honoured, chunked by
  ``batch_size`` through :mod:`tfxattr.batching`.
* :class:`TfxattrSaliency` (and the IDGI shorthands) make any tfxattr method a
  ``saliency.core.CoreSaliency``: ``GetMask`` works with any PAIR ``call_model_function``, so
  ``GetSmoothedMask`` can wrap it and ``saliency.core.XRAI`` can take its mask as ``base_attribution``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import tensorflow as tf
from saliency.core.base import INPUT_OUTPUT_GRADIENTS, OUTPUT_LAYER_VALUES, CoreSaliency

from .. import checks
from ..batching import groups, spans
from ..checks import positive_int
from ..methods import get_method
from ..models import as_model

# keys of ``call_model_args`` that carry the explained class (ours, PAIR's examples, common variants)
TARGET_KEYS = ("target", "class_idx_str", "class_idx")
# a row target meaning "the class the call_model_function picks itself" (no class known to us)
CMF_TARGET = -1


def _target_key(call_model_args):
    """The key of ``call_model_args`` that carries the class; ``int`` for a bare-int argument; None."""
    if isinstance(call_model_args, dict):
        return next((key for key in TARGET_KEYS if key in call_model_args), None)
    if isinstance(call_model_args, (int, np.integer)) and not isinstance(call_model_args, bool):
        return int
    return None


def _target_from_args(call_model_args, default):
    key = _target_key(call_model_args)
    if key is int:
        return int(call_model_args)
    if key is not None:
        return int(call_model_args[key])
    return default


def _check_target(target, num_classes, name):
    if target is not None and not 0 <= target < num_classes:
        raise ValueError(f"{name} {target} is out of range: the model has {num_classes} classes")


def call_model_function(model, target=None, **adapter_options):
    """PAIR contract: ``f(x_value_batch, call_model_args=None, expected_keys=None) -> dict``.

    The class explained is ``call_model_args["target"]`` (or ``"class_idx_str"``, or an int
    ``call_model_args``), else ``target``, else each example's top-1 class.
    ``OUTPUT_LAYER_VALUES`` is the explained score f_c (N,); gradients have the batch's shape/dtype.
    """
    adapter = as_model(model, **adapter_options)
    _check_target(target, adapter.num_classes, "target")

    def fn(x_value_batch, call_model_args=None, expected_keys=None):
        x = np.asarray(x_value_batch)
        t = _target_from_args(call_model_args, target)
        _check_target(t, adapter.num_classes, "call_model_args' target")
        targets = (np.argmax(adapter.scores(x), -1) if t is None else np.full(len(x), t)).astype(np.int32)
        values, grads = adapter.values_and_gradients(x.astype(np.float32), targets)
        out = {OUTPUT_LAYER_VALUES: values.numpy()}
        if expected_keys is None or INPUT_OUTPUT_GRADIENTS in expected_keys:
            out[INPUT_OUTPUT_GRADIENTS] = grads.numpy().astype(x.dtype if x.dtype.kind == "f" else np.float32)
        return out

    fn.adapter = adapter
    return fn


class PairEvaluator:
    """A PAIR ``call_model_function`` (cmf) as a :class:`~tfxattr.models.contracts.GradientEvaluator`.

    Row ``i`` is explained for ``targets[i]`` (``CMF_TARGET`` rows: ``target``, or the class in
    ``call_model_args``, else the class the cmf picks itself):

    * when ``call_model_args`` carries the class (a dict with one of ``TARGET_KEYS``, or a bare int),
      the cmf is called once per group of rows sharing a target, with that target set under the same
      key, in chunks of ``batch_size``;
    * when ``OUTPUT_LAYER_VALUES`` is (N, classes), each row's value is its own target's column;
    * a cmf that takes no class through its arguments explains the class it picks itself (e.g. one
      bound in a closure): its gradients cannot follow ``targets``.

    ``input_shape`` and ``num_classes`` are what was given, else what the cmf's outputs have shown
    (an AttributeError says so while unknown); ``scores`` needs a cmf returning every class's value.
    """

    def __init__(self, call_model_function, call_model_args=None, batch_size=32, target=None,
                 pixel_range=(0.0, 255.0), input_shape=None, num_classes=None):
        self.fn = call_model_function
        self.args = call_model_args
        self.batch_size = positive_int(batch_size, "batch_size")
        self.target_key = _target_key(call_model_args)
        self.target = _target_from_args(call_model_args, target)
        self.pixel_range = checks.pixel_range(pixel_range)
        self._input_shape = None if input_shape is None else tuple(input_shape)
        self._num_classes = None if num_classes is None else positive_int(num_classes, "num_classes")

    # -- what the cmf allows us to know ------------------------------------------------------------
    @property
    def input_shape(self) -> Tuple[Optional[int], ...]:
        if self._input_shape is None:
            raise AttributeError("PairEvaluator.input_shape is unknown until the call_model_function has been "
                                 "called: pass input_shape=(H, W, C)")
        return self._input_shape

    @property
    def num_classes(self) -> int:
        if self._num_classes is None:
            raise AttributeError("PairEvaluator.num_classes is unknown: pass num_classes=<int> (the "
                                 "call_model_function has not returned OUTPUT_LAYER_VALUES of shape (N, classes))")
        return self._num_classes

    # -- calls ----------------------------------------------------------------------------------
    def _row_targets(self, targets, n):
        t = np.full(n, CMF_TARGET, np.int64) if targets is None else np.asarray(targets, np.int64).reshape(-1)
        if t.shape != (n,):
            raise ValueError(f"targets must give one class per example ({n}), got shape {np.shape(targets)}")
        if self.target is not None:
            t = np.where(t < 0, self.target, t)
        return t

    def _args_for(self, target):
        if self.target_key is None or target < 0:
            return self.args
        if self.target_key is int:
            return int(target)
        return {**self.args, self.target_key: int(target)}

    def _batches(self, targets):
        """``(call_model_args, rows)`` per cmf call: one target per call when the args carry it."""
        keys = targets if self.target_key is not None else np.zeros(len(targets), np.int64)
        for key, rows in groups(keys, self.batch_size):
            yield self._args_for(key), rows

    def _call(self, x, args, keys):
        if self._input_shape is None:
            self._input_shape = tuple(x.shape[1:])
        out = self.fn(x, call_model_args=args, expected_keys=keys)
        missing = [k for k in keys if k not in out]
        if missing:
            raise ValueError(f"call_model_function did not return {missing}")
        return out

    def _scalar_values(self, raw, targets):
        v = np.asarray(raw, np.float64)
        n = len(targets)
        if v.ndim == 2 and v.shape[1] > 1:
            self._num_classes = self._num_classes or v.shape[1]
            if np.any(targets < 0):
                raise ValueError("OUTPUT_LAYER_VALUES is (N, classes): pass target=<class> or "
                                 "call_model_args={'target': <class>}")
            if np.any(targets >= v.shape[1]):
                raise ValueError(f"targets {sorted(set(targets[targets >= v.shape[1]].tolist()))} are out of range "
                                 f"for OUTPUT_LAYER_VALUES with {v.shape[1]} classes")
            v = v[np.arange(n), targets]
        v = v.reshape(-1)
        if v.shape != (n,):
            raise ValueError(f"OUTPUT_LAYER_VALUES must give one value per example, got shape {np.shape(raw)}")
        return v

    def values_and_gradients(self, x, targets=None):
        """``(f (N,) float64, df/dx (N, H, W, C) float32)`` for each row's target."""
        x = np.asarray(x)
        targets = self._row_targets(targets, len(x))
        vals, grads = np.empty(len(x), np.float64), np.empty(x.shape, np.float32)
        for args, rows in self._batches(targets):
            chunk = x[rows]
            out = self._call(chunk, args, [INPUT_OUTPUT_GRADIENTS, OUTPUT_LAYER_VALUES])
            g = np.asarray(out[INPUT_OUTPUT_GRADIENTS])
            if g.shape != chunk.shape:
                raise ValueError(f"INPUT_OUTPUT_GRADIENTS must have the batch's shape {chunk.shape}, got {g.shape}")
            vals[rows] = self._scalar_values(out[OUTPUT_LAYER_VALUES], targets[rows])
            grads[rows] = g
        return tf.constant(vals), tf.constant(grads)

    def values(self, x, targets=None):
        """``f (N,)`` float64 for each row's target (forward only)."""
        x = np.asarray(x)
        targets = self._row_targets(targets, len(x))
        vals = np.empty(len(x), np.float64)
        for args, rows in self._batches(targets):
            out = self._call(x[rows], args, [OUTPUT_LAYER_VALUES])
            vals[rows] = self._scalar_values(out[OUTPUT_LAYER_VALUES], targets[rows])
        return tf.constant(vals)

    def network_view(self):
        """A cmf hides its preprocessing: its input is the network's input as far as we can tell."""
        return (lambda x: x), self

    def scores(self, x) -> np.ndarray:
        """Every class's value (N, classes), when the cmf returns them (top-1 targets come from these)."""
        x = np.asarray(x)
        out = []
        for span in spans(len(x), self.batch_size):
            v = np.asarray(self._call(x[span], self.args, [OUTPUT_LAYER_VALUES])[OUTPUT_LAYER_VALUES])
            if v.ndim != 2 or v.shape[1] < 2:
                raise ValueError(f"scores need OUTPUT_LAYER_VALUES of shape (N, classes); this call_model_function "
                                 f"returns shape {v.shape} (one value per example): give the targets explicitly")
            self._num_classes = self._num_classes or v.shape[1]
            out.append(v)
        return np.concatenate(out) if out else np.zeros((0, self.num_classes), np.float32)


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
        evaluator = PairEvaluator(call_model_function, call_model_args, batch_size, target, pixel_range,
                                  input_shape=x.shape)
        t = CMF_TARGET if evaluator.target is None else evaluator.target
        return method.attribute(evaluator, x[None], np.full(1, t, np.int32))[0]


class IntegratedGradientsIDGI(TfxattrSaliency):
    """IG path + IDGI aggregation (left rule) as a PAIR CoreSaliency."""
    method_name = "ig+idgi"


class GuidedIGIDGI(TfxattrSaliency):
    """Guided IG path + IDGI aggregation as a PAIR CoreSaliency."""
    method_name = "guided_ig+idgi"


class BlurIGIDGI(TfxattrSaliency):
    """Blur IG path + IDGI aggregation as a PAIR CoreSaliency."""
    method_name = "blur_ig+idgi"
