"""Model adapters: what scalar f_c(x) is explained, and its gradient, batched.

Every model a user can hand us (a ``keras.Model``, a Keras application name, a
SavedModel directory, a TF-differentiable callable) becomes one
:class:`ModelAdapter`. Preprocessing is composed *inside* the differentiable
function, so images, baselines and attributions all live in pixel space.
"""
from __future__ import annotations

import copy
import os
import warnings
from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from .. import checks
from ..batching import chunks, spans
from ..checks import one_of, positive_int
from . import sources
from .objective import OUTPUTS, Objective
from .sources import WEIGHT_NONE

# adapters already built for a model object live on the object (attribute below), so repeated
# explain() calls do not re-trace the model and the adapters die with the model
_CACHE_ATTR = "_tfxattr_adapters"
DEFAULT_BATCH_SIZE = 32
# the softmax probe: a few random images at the model's size (PROBE_SIZE where the size is free)
PROBE_IMAGES = 2
PROBE_SIZE = 32
# float32 softmax rows sum to 1 within ~1e-6; 1e-3 also accepts float16 heads, and no logit vector
# of a trained model is that close to a probability vector on random images
SOFTMAX_SUM_TOLERANCE = 1e-3
SOFTMAX_NEGATIVE_TOLERANCE = 1e-6


class ModelAdapter:
    """One differentiable view of a classifier: ``x (pixels) -> scores (N, classes)``.

    Implements :class:`~tfxattr.models.contracts.KerasEvaluator` (``keras_model`` is None for
    SavedModels and callables). ``values_and_gradients(x, targets)`` returns ``f_c(x)`` and
    ``df_c/dx`` from the same forward pass, in chunks of ``batch_size`` through one ``tf.function``;
    the :class:`~tfxattr.models.objective.Objective` says which scalar ``f_c`` is.
    """

    def __init__(self, fn: Callable, input_shape: Sequence[Optional[int]], num_classes: int,
                 output: str = "logit", preprocess: Optional[Callable] = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, pixel_range=(0.0, 255.0),
                 ends_in_softmax: Optional[bool] = None, name: str = "model",
                 class_names: Optional[Sequence[str]] = None, keras_model=None, weights: Optional[str] = None,
                 keep=None):
        one_of(output, "output", OUTPUTS)
        positive_int(batch_size, "batch_size")
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (H, W, C), got {tuple(input_shape)}")
        self._fn = fn
        self.input_shape = tuple(input_shape)
        self.num_classes = int(num_classes)
        self.preprocess = preprocess
        self.batch_size = int(batch_size)
        self.pixel_range = checks.pixel_range(pixel_range)
        self.name = name
        self.class_names = list(class_names) if class_names is not None else None
        self.keras_model = keras_model
        self.weights = weights
        self._keep = keep  # trackable objects (a loaded SavedModel) that must live as long as the adapter
        if ends_in_softmax is None:
            ends_in_softmax = self._probe_softmax()
        self.objective = Objective(output, bool(ends_in_softmax))
        if self.objective.ends_in_softmax and output == "logit":
            warnings.warn(
                f"{name}: the model already ends in a softmax, so output='logit' explains "
                "probabilities. Build it without the final softmax (e.g. classifier_activation=None) "
                "to explain logits, or pass output='probability' to silence this warning.",
                UserWarning, stacklevel=3)
        spec = tf.TensorSpec((None,) + self.input_shape, tf.float32)
        self._scores_fn = tf.function(lambda x: self.objective.scores(self._raw(x)), input_signature=[spec],
                                      reduce_retracing=True)
        self._probabilities_fn = tf.function(lambda x: self.objective.probabilities(self._raw(x)),
                                             input_signature=[spec], reduce_retracing=True)
        self._vg_fn = tf.function(self._values_and_gradients,
                                  input_signature=[spec, tf.TensorSpec((None,), tf.int32)],
                                  reduce_retracing=True)

    @property
    def output(self) -> str:
        return self.objective.output

    @property
    def ends_in_softmax(self) -> bool:
        return self.objective.ends_in_softmax

    @property
    def random_weights(self) -> bool:
        return self.weights == WEIGHT_NONE

    # -- the differentiable function -------------------------------------------------
    def _raw(self, x):
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self._fn(x)

    def _values_and_gradients(self, x, targets):
        with tf.GradientTape() as tape:
            tape.watch(x)
            values = self.objective.explained(self._raw(x), targets)
        return values, tape.gradient(values, x)

    # -- public, chunked -------------------------------------------------------------
    def _chunked(self, fn, x, batch_size, width):
        x = tf.convert_to_tensor(x, tf.float32)
        out = [fn(rows) for rows in chunks(x, batch_size or self.batch_size)]
        return tf.concat(out, 0).numpy() if out else np.zeros((0, width), np.float32)

    def scores(self, x, batch_size: Optional[int] = None) -> np.ndarray:
        """Logits or probabilities (per ``output``) of pixel images ``x`` (N,H,W,C)."""
        return self._chunked(self._scores_fn, x, batch_size, self.num_classes)

    def probabilities(self, x, batch_size: Optional[int] = None) -> np.ndarray:
        """Class probabilities, whatever ``output`` says (metrics use these)."""
        return self._chunked(self._probabilities_fn, x, batch_size, self.num_classes)

    def values_and_gradients(self, x, targets, batch_size: Optional[int] = None):
        """``(f_c(x) (N,), df_c/dx (N,H,W,C))`` as tf.Tensors, chunked by ``batch_size``."""
        x = tf.convert_to_tensor(x, tf.float32)
        targets = tf.convert_to_tensor(targets, tf.int32)
        b = batch_size or self.batch_size
        if len(x) <= b:
            return self._vg_fn(x, targets)
        parts = [self._vg_fn(x[span], targets[span]) for span in spans(len(x), b)]
        return tf.concat([v for v, _ in parts], 0), tf.concat([g for _, g in parts], 0)

    def values(self, x, targets, batch_size: Optional[int] = None) -> tf.Tensor:
        """``f_c(x)`` only (one forward pass, no gradient)."""
        s = self.scores(x, batch_size)
        return tf.gather(tf.convert_to_tensor(s), tf.convert_to_tensor(targets, tf.int32), axis=1, batch_dims=1)

    def with_options(self, output: Optional[str] = None, batch_size: Optional[int] = None) -> "ModelAdapter":
        """A copy with another ``output`` or ``batch_size`` (shares the model)."""
        if output is None or output == self.output:
            if batch_size is None or batch_size == self.batch_size:
                return self
            positive_int(batch_size, "batch_size")
            twin = copy.copy(self)  # shares the traced functions: batch_size is not part of them
            twin.batch_size = int(batch_size)
            return twin
        return ModelAdapter(self._fn, self.input_shape, self.num_classes,
                            output=output or self.output, preprocess=self.preprocess,
                            batch_size=batch_size or self.batch_size, pixel_range=self.pixel_range,
                            ends_in_softmax=self.ends_in_softmax, name=self.name,
                            class_names=self.class_names, keras_model=self.keras_model, weights=self.weights,
                            keep=self._keep)

    def _probe_softmax(self) -> bool:
        """Whether the raw output already holds probabilities: on random images every row is
        non-negative and sums to one."""
        h, w, c = (s if s is not None else PROBE_SIZE for s in self.input_shape)
        rng = np.random.default_rng(0)
        lo, hi = self.pixel_range
        probe = tf.constant(rng.uniform(lo, hi, (PROBE_IMAGES, h, w, c)), tf.float32)
        out = tf.cast(self._raw(probe), tf.float32).numpy()
        return bool(np.all(out >= -SOFTMAX_NEGATIVE_TOLERANCE)
                    and np.allclose(out.sum(-1), 1.0, atol=SOFTMAX_SUM_TOLERANCE))

    def __repr__(self):
        return (f"ModelAdapter({self.name!r}, input_shape={self.input_shape}, classes={self.num_classes}, "
                f"output={self.output!r}, batch_size={self.batch_size})")


# ---------------------------------------------------------------------------------------
def as_model(model, output: str = "logit", preprocess: Optional[Callable] = None,
             batch_size: int = DEFAULT_BATCH_SIZE, input_shape=None, num_classes=None,
             pixel_range=(0.0, 255.0), weights="imagenet", output_index=None) -> ModelAdapter:
    """Turn ``model`` into a :class:`ModelAdapter`.

    ``model``: a ModelAdapter, ``keras.Model``, Keras application name (see ``keras_apps``),
    SavedModel directory, ``.keras``/``.h5`` file, or a TF-differentiable callable
    ``(N,H,W,C) -> (N, classes)``. ``preprocess`` is applied inside the gradient (a Keras
    application name brings its own ``preprocess_input``). ``output_index`` picks one output
    of a multi-output model (an int or an output name).
    """
    key = (output, preprocess, output_index, tuple(pixel_range),
           None if input_shape is None else tuple(input_shape), num_classes)
    if not isinstance(model, (str, os.PathLike, ModelAdapter)):
        cache = getattr(model, _CACHE_ATTR, None)
        if cache is None:
            cache = {}
            try:
                object.__setattr__(model, _CACHE_ATTR, cache)  # bypasses Keras' attribute tracking
            except (AttributeError, TypeError):  # objects without a __dict__: no cache
                pass
        if key in cache:
            return cache[key].with_options(batch_size=batch_size)
        adapter = _build_adapter(model, output, preprocess, batch_size, input_shape, num_classes, pixel_range,
                                 weights, output_index)
        cache[key] = adapter
        return adapter
    return _build_adapter(model, output, preprocess, batch_size, input_shape, num_classes, pixel_range, weights,
                          output_index)


def _build_adapter(model, output, preprocess, batch_size, input_shape, num_classes, pixel_range, weights,
                   output_index) -> ModelAdapter:
    if isinstance(model, ModelAdapter):
        if preprocess is not None:
            raise ValueError("preprocess cannot be changed on an existing ModelAdapter; pass the raw model")
        return model.with_options(output=output, batch_size=batch_size)
    loaded = sources.load(model, weights)
    preprocess = preprocess or loaded.preprocess
    input_shape = input_shape or loaded.input_shape
    ends_in_softmax = loaded.ends_in_softmax
    keras_model = None
    if sources.find_source(loaded.model).name == "keras_model":
        keras_model = loaded.model
        fn, shape, k = _keras_fn(keras_model, output_index)
        input_shape = input_shape or shape
        num_classes = num_classes or k
        if ends_in_softmax is None:
            ends_in_softmax = _keras_ends_in_softmax(keras_model)
    else:
        fn = _select_output(loaded.model, output_index)
    if input_shape is None:
        raise ValueError(f"input_shape=(H, W, C) is required: the input shape of {loaded.name!r} is unknown")
    input_shape = tuple(input_shape)
    if num_classes is None:
        num_classes = _probe_num_classes(fn, input_shape, preprocess)
    return ModelAdapter(fn, input_shape, num_classes, output=output, preprocess=preprocess,
                        batch_size=batch_size, pixel_range=pixel_range, ends_in_softmax=ends_in_softmax,
                        name=loaded.name, class_names=loaded.class_names, keras_model=keras_model,
                        weights=loaded.weights, keep=loaded.keep)


def _keras_fn(model, output_index):
    outputs = getattr(model, "outputs", None)
    try:
        in_shape = tuple(model.inputs[0].shape[1:])
    except (AttributeError, IndexError, TypeError, ValueError):
        in_shape = None
    n_out = len(model.outputs) if outputs else 1
    if n_out > 1 and output_index is None:
        names = [getattr(t, "name", str(i)) for i, t in enumerate(model.outputs)]
        raise ValueError(f"model has {n_out} outputs ({names}); pass output_index=<int or name> to choose one")

    def fn(x):
        return model(x, training=False)

    fn = _select_output(fn, output_index, model=model)
    k = None
    try:
        out = model.outputs[_resolve_index(model, output_index)] if n_out > 1 else model.outputs[0]
        if len(out.shape) != 2:
            raise ValueError(f"the model output must be (N, classes), got shape {tuple(out.shape)}; "
                             "pass output_index for a multi-output model or wrap the model")
        k = out.shape[-1]
    except (AttributeError, IndexError, TypeError):
        pass
    if in_shape is not None and any(s is None for s in in_shape[:2]):
        in_shape = (None, None, in_shape[2])
    return fn, in_shape, k


def _resolve_index(model, output_index):
    if output_index is None:
        return 0
    if isinstance(output_index, str):
        names = list(getattr(model, "output_names", []) or [])
        if output_index not in names:
            raise ValueError(f"output_index {output_index!r} not among the model outputs {names}")
        return names.index(output_index)
    names = list(getattr(model, "output_names", []) or [])
    n_out = len(getattr(model, "outputs", None) or names) or 1
    if isinstance(output_index, bool) or not isinstance(output_index, (int, np.integer)) \
            or not 0 <= output_index < n_out:
        raise ValueError(f"output_index must be an output name or an int in [0, {n_out}), got {output_index!r}")
    return int(output_index)


def _select_output(fn, output_index, model=None):
    if output_index is None:
        def select(x):
            out = fn(x)
            if isinstance(out, dict):
                if len(out) != 1:
                    raise ValueError(f"model returns {len(out)} outputs {sorted(out)}; pass output_index")
                out = next(iter(out.values()))
            elif isinstance(out, (list, tuple)):
                if len(out) != 1:
                    raise ValueError(f"model returns {len(out)} outputs; pass output_index")
                out = out[0]
            return out
        return select

    def select_indexed(x):
        out = fn(x)
        if isinstance(out, dict):
            if output_index not in out:
                raise ValueError(f"output_index {output_index!r} not among the model outputs {sorted(out)}")
            return out[output_index]
        if isinstance(out, (list, tuple)):
            idx = _resolve_index(model, output_index) if model is not None else int(output_index)
            return out[idx]
        return out
    return select_indexed


def _keras_ends_in_softmax(model) -> Optional[bool]:
    layer = model.layers[-1] if getattr(model, "layers", None) else None
    while layer is not None and hasattr(layer, "layers") and layer.layers:
        layer = layer.layers[-1]
    if layer is None:
        return None
    if type(layer).__name__ == "Softmax":
        return True
    act = getattr(layer, "activation", None)
    if act is not None:
        return getattr(act, "__name__", "") == "softmax"
    return None


def _probe_num_classes(fn, input_shape, preprocess):
    h, w, c = (s if s is not None else PROBE_SIZE for s in input_shape)
    x = tf.zeros((1, h, w, c), tf.float32)
    if preprocess is not None:
        x = preprocess(x)
    out = fn(x)
    if len(out.shape) != 2:
        raise ValueError(f"the model output must be (N, classes), got shape {tuple(out.shape)}")
    return int(out.shape[-1])
