"""What a model says about itself: Keras introspection and probes, for :func:`~tfxattr.models.as_model`.

A Keras model is read (its input, the output ``output_index`` selects, the layer producing it: the
head, and its first layer: the input range it implies); a model without layers (a SavedModel, a
callable) is probed on a few images. Nothing here changes a model.
"""
from __future__ import annotations

from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from ..checks import did_you_mean
from ..inputs import CONVENTIONAL_RANGES
from . import compat

# the probes: a few random images at the model's size (PROBE_SIZE where the size is free)
PROBE_IMAGES = 2
PROBE_SIZE = 32
# float32 softmax rows sum to 1 within ~1e-6; 1e-3 also accepts float16 heads, and no logit vector
# of a trained model is that close to a probability vector on random images
SOFTMAX_SUM_TOLERANCE = 1e-3
SOFTMAX_NEGATIVE_TOLERANCE = 1e-6
# channels-first detection: a leading axis this small in front of two larger ones is a channel axis
MAX_CHANNELS = 4


def check_keras_input(model, name):
    """Refuse a Keras model with several inputs, or an integer input (no gradient)."""
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) > 1:
        raise ValueError(f"model {name!r} takes {len(inputs)} inputs; tfxattr explains models with one image input")
    dtype = str(getattr(inputs[0], "dtype", "float32")) if inputs else "float32"
    if not any(kind in dtype for kind in ("float", "bfloat")):
        raise ValueError(f"model {name!r} takes {dtype} inputs: gradients need float inputs. Give it a float "
                         "input (cast inside the model after the input layer)")


def check_channels_last(shape, name):
    """Refuse an input shape (H, W, C) that reads as channels-first (C, H, W)."""
    c0, h, w = shape
    if c0 is not None and c0 <= MAX_CHANNELS and (h is None or h > MAX_CHANNELS) and (w is None or w > MAX_CHANNELS):
        raise ValueError(f"model {name!r} takes channels-first images (N, C, H, W) = (N, {c0}, {h}, {w}); "
                         "tfxattr needs channels-last images (N, H, W, C): build the model with "
                         "data_format='channels_last' (the Keras default) or transpose inside it")


def keras_output_fn(model, output_index):
    """``(fn, input shape (H, W, C) or None, output width or None)`` of a Keras model: ``fn(x)`` is the model
    in inference mode followed by the output ``output_index`` selects."""
    try:
        in_shape = tuple(model.inputs[0].shape[1:])
    except (AttributeError, IndexError, TypeError, ValueError):
        in_shape = None
    fn = select_output(lambda x: model(x, training=False), output_index, model)
    units = None
    outputs = getattr(model, "outputs", None)
    if outputs:
        out = outputs[output_position(model, output_index)]
        if len(out.shape) != 2:
            raise ValueError(f"the model output must be (N, classes), got shape {tuple(out.shape)}; "
                             "pass output_index for a multi-output model or wrap the model")
        units = out.shape[-1]
    if in_shape is not None and any(s is None for s in in_shape[:2]):
        in_shape = (None, None, in_shape[2])
    return fn, in_shape, units


def output_names(model) -> dict:
    """Selector -> position in the flattened outputs (``keras.tree.flatten`` order, = ``model.outputs``):
    dict keys, output layer names, and positions."""
    names = list(getattr(model, "output_names", None) or [])
    out = {name: i for i, name in enumerate(names)}
    structure = getattr(model, "output", None)
    if isinstance(structure, dict):
        out.update({key: i for i, key in enumerate(sorted(structure))})
    return out


def output_position(model, output_index) -> int:
    outputs = getattr(model, "outputs", None) or []
    n = len(outputs) or 1
    names = output_names(model)
    if output_index is None:
        if n > 1:
            raise ValueError(f"model has {n} outputs ({sorted(names)}); pass output_index=<int, output key or "
                             "output layer name> to choose one")
        return 0
    if isinstance(output_index, str):
        if output_index not in names:
            hint = did_you_mean(output_index, names)
            raise ValueError(f"output_index {output_index!r} is not an output of the model{hint}; "
                             f"outputs: {sorted(names)} or an int in [0, {n})")
        return names[output_index]
    if isinstance(output_index, bool) or not isinstance(output_index, (int, np.integer)) \
            or not 0 <= output_index < n:
        raise ValueError(f"output_index must be an output key or name ({sorted(names)}) or an int in [0, {n}), "
                         f"got {output_index!r}")
    return int(output_index)


def select_output(fn, output_index, model=None):
    """``fn`` followed by picking one output. Keras models: resolved once from the model's outputs;
    other callables: at call time from what they return (a dict key, or a list/tuple position)."""
    position = output_position(model, output_index) if model is not None else None

    def select(x):
        out = fn(x)
        if not isinstance(out, (dict, list, tuple)):
            return out
        flat = [out[k] for k in sorted(out)] if isinstance(out, dict) else list(out)
        if position is not None:
            return flat[position]
        if output_index is None:
            if len(flat) != 1:
                keys = sorted(out) if isinstance(out, dict) else list(range(len(flat)))
                raise ValueError(f"model returns {len(flat)} outputs {keys}; pass output_index=<key or int>")
            return flat[0]
        if isinstance(out, dict) and isinstance(output_index, str):
            if output_index not in out:
                raise ValueError(f"output_index {output_index!r} is not an output of the model"
                                 f"{did_you_mean(output_index, out)}; outputs: {sorted(out)}")
            return out[output_index]
        if isinstance(output_index, bool) or not isinstance(output_index, (int, np.integer)) \
                or not 0 <= output_index < len(flat):
            raise ValueError(f"output_index must be an int in [0, {len(flat)}) or an output key, got {output_index!r}")
        return flat[int(output_index)]
    return select


# operations (layers or keras.ops calls) whose output is a probability vector, by class name
PROBABILITY_OPS = {"Softmax": "softmax", "Sigmoid": "sigmoid"}
# layers that compute logits when they have no (or a linear) activation
LINEAR_LAYERS = ("Dense", "EinsumDense", "Conv1D", "Conv2D", "Conv3D")


def keras_head(model, units, output_index=None) -> Optional[str]:
    """The head read from the layer or op that produces the selected output (None: unknown, probe it).

    The output chosen by ``output_index`` is followed back to its producer (through nested models): a
    ``Softmax`` layer or ``keras.ops.softmax`` call, a layer with a softmax/sigmoid activation, or a linear
    Dense/Conv layer (logits). Subclassed models have no graph to follow: their head is probed."""
    outputs = getattr(model, "outputs", None)
    if not outputs:
        return None
    found = compat.producer(outputs[output_position(model, output_index)])
    while found is not None:
        op, index = found
        inner = getattr(op, "outputs", None) if isinstance(op, keras.Model) else None
        if not inner:
            break
        found = compat.producer(inner[index])  # a nested model: its own producer of that output
    if found is None:
        return None
    op = found[0]
    kind = type(op).__name__
    if kind in PROBABILITY_OPS:
        return PROBABILITY_OPS[kind]
    act = getattr(getattr(op, "activation", None), "__name__", None)
    if act in ("softmax", "sigmoid"):
        return act
    if (act == "linear" and kind == "Activation") or (kind in LINEAR_LAYERS and act in (None, "linear")):
        return "sigmoid_logits" if units == 1 else "softmax_logits"
    return None


def implied_range(model) -> Optional[tuple]:
    """The input range a model's first layer implies, or None (unknown).

    ``Rescaling(1/255)`` reads 0..255 into [0, 1] and ``Rescaling(1/127.5, offset=-1)`` 0..255 into
    [-1, 1] (scale s, offset 0 or -1: 0..1/s or 0..2/s). An adapted ``Normalization`` (mean m, variance v
    per channel) reads the conventional range (:data:`~tfxattr.inputs.CONVENTIONAL_RANGES`) its data came
    from: the smallest one holding every channel's m +- sqrt(v), if sqrt(v) is at least
    :data:`MIN_SPREAD` of its width (data that narrow says nothing about the scale).
    """
    layers = [layer for layer in getattr(model, "layers", []) if not isinstance(layer, keras.layers.InputLayer)]
    if not layers:
        return None
    if isinstance(layers[0], keras.layers.Normalization):
        return _normalization_range(layers[0])
    if not isinstance(layers[0], keras.layers.Rescaling):
        return None
    scale, offset = np.asarray(layers[0].scale, np.float64), np.asarray(layers[0].offset, np.float64)
    if scale.size != 1 or offset.size != 1 or float(scale) <= 0:
        return None
    scale, offset = float(scale), float(offset)
    if offset == 0.0:
        return (0.0, 1.0 / scale)
    if offset == -1.0:
        return (0.0, 2.0 / scale)
    return None


# an adapted Normalization names a conventional range only if its data spread over this fraction of it
MIN_SPREAD = 0.1


def _normalization_range(layer) -> Optional[tuple]:
    if getattr(layer, "invert", False):
        return None
    try:
        mean = np.asarray(keras_value(layer.mean), np.float64).ravel()
        std = np.sqrt(np.asarray(keras_value(layer.variance), np.float64).ravel())
    except (AttributeError, TypeError, ValueError):  # not adapted, or built without statistics
        return None
    if mean.size == 0 or not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)):
        return None
    for lo, hi in CONVENTIONAL_RANGES:
        if np.all(mean - std >= lo) and np.all(mean + std <= hi) and np.all(std >= MIN_SPREAD * (hi - lo)):
            return (lo, hi)
    return None


def keras_value(x):
    """A Keras variable's (or tensor's) value as numpy; anything else as it is."""
    return x.numpy() if hasattr(x, "numpy") else x


def probe_units(fn, input_shape, preprocess, value: float, name="model"):
    """The output width of ``fn`` on one image filled with ``value``; a model that does not return tensors is
    refused."""
    h, w, c = (s if s is not None else PROBE_SIZE for s in input_shape)
    x = tf.fill((1, h, w, c), float(value))
    if preprocess is not None:
        x = preprocess(x)
    out = fn(x)
    if not tf.is_tensor(out):
        raise TypeError(f"model {name!r} returned a {type(out).__module__}.{type(out).__name__}: the callable must "
                        "return TensorFlow tensors, computed with TensorFlow ops from its input, so tfxattr can "
                        "differentiate and trace it (return model(x), not model.predict(x) or np.asarray(...))")
    if len(out.shape) != 2:
        raise ValueError(f"the model output must be (N, classes), got shape {tuple(out.shape)}")
    return int(out.shape[-1])


def probe_head(raw, input_shape, pixel_range, units: int) -> str:
    """Guess the head of a model without layers from its raw output ``raw(x)`` on random images in
    ``pixel_range``: probabilities (rows of a softmax sum to one; one unit in [0, 1] is a sigmoid), else
    logits (one unit: a binary logit)."""
    h, w, c = (s if s is not None else PROBE_SIZE for s in input_shape)
    rng = np.random.default_rng(0)
    lo, hi = pixel_range
    probe = tf.constant(rng.uniform(lo, hi, (PROBE_IMAGES, h, w, c)), tf.float32)
    out = tf.cast(raw(probe), tf.float32).numpy()
    in_unit = bool(np.all(out >= -SOFTMAX_NEGATIVE_TOLERANCE) and np.all(out <= 1 + SOFTMAX_NEGATIVE_TOLERANCE))
    if units == 1:
        return "sigmoid" if in_unit else "sigmoid_logits"
    return "softmax" if in_unit and np.allclose(out.sum(-1), 1.0, atol=SOFTMAX_SUM_TOLERANCE) else "softmax_logits"
