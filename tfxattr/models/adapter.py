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

from ..checks import positive_int

OUTPUTS = ("logit", "probability")
# adapters already built for a model object live on the object (attribute below), so repeated
# explain() calls do not re-trace the model and the adapters die with the model
_CACHE_ATTR = "_tfxattr_adapters"
DEFAULT_BATCH_SIZE = 32


class ModelAdapter:
    """One differentiable view of a classifier: ``x (pixels) -> scores (N, classes)``.

    ``values_and_gradients(x, targets)`` returns ``f_c(x)`` and ``df_c/dx`` from the
    same forward pass, in chunks of ``batch_size`` through one ``tf.function``.
    """

    def __init__(self, fn: Callable, input_shape: Sequence[Optional[int]], num_classes: int,
                 output: str = "logit", preprocess: Optional[Callable] = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, pixel_range=(0.0, 255.0),
                 ends_in_softmax: Optional[bool] = None, name: str = "model",
                 class_names: Optional[Sequence[str]] = None, keras_model=None):
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        positive_int(batch_size, "batch_size")
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (H, W, C), got {tuple(input_shape)}")
        self._fn = fn
        self.input_shape = tuple(input_shape)
        self.num_classes = int(num_classes)
        self.output = output
        self.preprocess = preprocess
        self.batch_size = int(batch_size)
        try:
            lo, hi = (float(v) for v in pixel_range)
        except (TypeError, ValueError) as err:
            raise ValueError(f"pixel_range must be (low, high) numbers, got {pixel_range!r}") from err
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"pixel_range must be finite with low < high, got {pixel_range!r}")
        self.pixel_range = (lo, hi)
        self.name = name
        self.class_names = list(class_names) if class_names is not None else None
        self.keras_model = keras_model
        self.ends_in_softmax = ends_in_softmax
        if ends_in_softmax is None:
            self.ends_in_softmax = self._probe_softmax()
        if self.ends_in_softmax and output == "logit":
            warnings.warn(
                f"{name}: the model already ends in a softmax, so output='logit' explains "
                "probabilities. Build it without the final softmax (e.g. classifier_activation=None) "
                "to explain logits, or pass output='probability' to silence this warning.",
                UserWarning, stacklevel=3)
        spec = tf.TensorSpec((None,) + self.input_shape, tf.float32)
        self._scores_fn = tf.function(self._scores, input_signature=[spec], reduce_retracing=True)
        self._vg_fn = tf.function(self._values_and_gradients,
                                  input_signature=[spec, tf.TensorSpec((None,), tf.int32)],
                                  reduce_retracing=True)

    # -- the differentiable function -------------------------------------------------
    def _raw(self, x):
        if self.preprocess is not None:
            x = self.preprocess(x)
        out = self._fn(x)
        return tf.cast(out, tf.float32)

    def _scores(self, x):
        out = self._raw(x)
        if self.output == "probability" and not self.ends_in_softmax:
            out = tf.nn.softmax(out, axis=-1)
        return out

    def _values_and_gradients(self, x, targets):
        with tf.GradientTape() as tape:
            tape.watch(x)
            scores = self._scores(x)
            values = tf.gather(scores, targets, axis=1, batch_dims=1)
        return values, tape.gradient(values, x)

    # -- public, chunked -------------------------------------------------------------
    def scores(self, x, batch_size: Optional[int] = None) -> np.ndarray:
        """Logits or probabilities (per ``output``) of pixel images ``x`` (N,H,W,C)."""
        x = tf.convert_to_tensor(x, tf.float32)
        chunks = [self._scores_fn(x[i:i + b]) for i, b in _chunks(len(x), batch_size or self.batch_size)]
        return tf.concat(chunks, 0).numpy() if chunks else np.zeros((0, self.num_classes), np.float32)

    def probabilities(self, x, batch_size: Optional[int] = None) -> np.ndarray:
        """Softmax probabilities, whatever ``output`` says (metrics use these)."""
        s = self.scores(x, batch_size)
        if self.output == "probability" or self.ends_in_softmax:
            return s
        return tf.nn.softmax(s, axis=-1).numpy()

    def values_and_gradients(self, x, targets, batch_size: Optional[int] = None):
        """``(f_c(x) (N,), df_c/dx (N,H,W,C))`` as tf.Tensors, chunked by ``batch_size``."""
        x = tf.convert_to_tensor(x, tf.float32)
        targets = tf.convert_to_tensor(targets, tf.int32)
        b = batch_size or self.batch_size
        if len(x) <= b:
            return self._vg_fn(x, targets)
        vals, grads = [], []
        for i, n in _chunks(len(x), b):
            v, g = self._vg_fn(x[i:i + n], targets[i:i + n])
            vals.append(v)
            grads.append(g)
        return tf.concat(vals, 0), tf.concat(grads, 0)

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
                            class_names=self.class_names, keras_model=self.keras_model)

    def _probe_softmax(self) -> bool:
        h, w, c = (s if s is not None else 32 for s in self.input_shape)
        rng = np.random.default_rng(0)
        lo, hi = self.pixel_range
        probe = tf.constant(rng.uniform(lo, hi, (2, h, w, c)), tf.float32)
        out = self._raw(probe).numpy()
        return bool(np.all(out >= -1e-6) and np.allclose(out.sum(-1), 1.0, atol=1e-3))

    def __repr__(self):
        return (f"ModelAdapter({self.name!r}, input_shape={self.input_shape}, classes={self.num_classes}, "
                f"output={self.output!r}, batch_size={self.batch_size})")


def _chunks(n: int, size: int):
    for i in range(0, n, size):
        yield i, min(size, n - i)


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
    import keras

    if isinstance(model, ModelAdapter):
        if preprocess is not None:
            raise ValueError("preprocess cannot be changed on an existing ModelAdapter; pass the raw model")
        return model.with_options(output=output, batch_size=batch_size)
    class_names = None
    ends_in_softmax = None
    name = getattr(model, "name", type(model).__name__)
    keras_model = None
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if os.path.isdir(path):
            return _from_saved_model(path, output, preprocess, batch_size, input_shape, num_classes,
                                     pixel_range, output_index)
        if os.path.isfile(path) and path.endswith((".keras", ".h5")):
            model = keras.models.load_model(path, compile=False)
            name = os.path.basename(path)
        else:
            import keras_apps
            try:
                spec = keras_apps.get(path)
            except ValueError as err:
                raise ValueError(
                    f"model {path!r} is neither a SavedModel directory, a .keras/.h5 file, nor a Keras "
                    f"application name ({', '.join(keras_apps.NAMES)})") from err
            model = keras_apps.build(spec.name, weights=weights)
            preprocess = preprocess or spec.preprocess
            class_names = keras_apps.class_names()
            ends_in_softmax = False
            name = spec.name
    if isinstance(model, keras.Model) or hasattr(model, "layers") and hasattr(model, "inputs"):
        keras_model = model
        fn, shape, k = _keras_fn(model, output_index)
        input_shape = input_shape or shape
        num_classes = num_classes or k
        if ends_in_softmax is None:
            ends_in_softmax = _keras_ends_in_softmax(model)
    elif callable(model):
        fn = _select_output(model, output_index)
    else:
        raise TypeError(f"model must be a keras.Model, a Keras application name, a SavedModel directory "
                        f"or a callable, got {type(model).__name__}")
    if input_shape is None:
        raise ValueError("input_shape=(H, W, C) is required for a model whose input shape is unknown")
    input_shape = tuple(input_shape)
    if num_classes is None:
        num_classes = _probe_num_classes(fn, input_shape, preprocess)
    return ModelAdapter(fn, input_shape, num_classes, output=output, preprocess=preprocess,
                        batch_size=batch_size, pixel_range=pixel_range, ends_in_softmax=ends_in_softmax,
                        name=name, class_names=class_names, keras_model=keras_model)


def _keras_fn(model, output_index):
    outputs = model.outputs if getattr(model, "_functional", None) is not None or hasattr(model, "outputs") else None
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
    h, w, c = (s if s is not None else 32 for s in input_shape)
    x = tf.zeros((1, h, w, c), tf.float32)
    if preprocess is not None:
        x = preprocess(x)
    out = fn(x)
    if len(out.shape) != 2:
        raise ValueError(f"the model output must be (N, classes), got shape {tuple(out.shape)}")
    return int(out.shape[-1])


def _from_saved_model(path, output, preprocess, batch_size, input_shape, num_classes, pixel_range, output_index):
    loaded = tf.saved_model.load(path)
    call = None
    spec_shape = None
    if hasattr(loaded, "serve") and callable(loaded.serve):
        call = loaded.serve
        sigs = getattr(call, "_list_all_concrete_functions_for_serialization", lambda: [])()
        for cf in sigs:
            args = cf.structured_input_signature[0]
            if args:
                spec_shape = tuple(args[0].shape[1:])
                break
    elif "serving_default" in getattr(loaded, "signatures", {}):
        sig = loaded.signatures["serving_default"]
        kw = sig.structured_input_signature[1]
        if len(kw) != 1:
            raise ValueError(f"SavedModel {path!r}: serving_default takes {len(kw)} inputs; expected one image input")
        arg_name, arg_spec = next(iter(kw.items()))
        spec_shape = tuple(arg_spec.shape[1:])

        def call(x, _sig=sig, _n=arg_name):
            return _sig(**{_n: x})
    elif callable(loaded):
        call = loaded
    else:
        raise ValueError(f"SavedModel {path!r} has neither a 'serve' endpoint nor a 'serving_default' signature")
    fn = _select_output(call, output_index)
    if input_shape is None and spec_shape is not None and len(spec_shape) == 3:
        input_shape = spec_shape
    if input_shape is None:
        raise ValueError(f"SavedModel {path!r}: input shape unknown, pass input_shape=(H, W, C)")
    if num_classes is None:
        num_classes = _probe_num_classes(fn, input_shape, preprocess)
    adapter = ModelAdapter(fn, input_shape, num_classes, output=output, preprocess=preprocess,
                           batch_size=batch_size, pixel_range=pixel_range, name=os.path.basename(path.rstrip("/")))
    adapter._saved_model = loaded  # keep the trackable objects alive
    return adapter
