"""The explainer network: builds a default one, loads one, and turns its output into maps.

An explainer is a ``keras.Model`` reading what the target network reads (the images after the
model's ``preprocess``; for the demo model and any model without outside preprocessing: the pixels)
and returning (N, h, w, K) maps, one channel per class of the target model (Learn to Rank's explainer is
class-conditional, Sec. 3.3), or (N, h, w, 1) for a class-agnostic one. The map of the explained class
is resized bilinearly to the image size.

The default (:func:`build_explainer`) is a small encoder-decoder in the spirit of the authors' DPT head
over a frozen DINOv3: the encoder is a frozen copy of the target model itself, cut at its penultimate
and last blocks (or any Keras ``backbone`` given), the decoder projects each feature map to ``width``
channels, fuses them top-down (upsample, add, 3x3 convolutions) and predicts one map per class. The
authors condition on the class with an embedding read out against the features; one output channel
per class is the same conditioning for a small label set without an embedding.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from ..checks import did_you_mean, positive_int
from ..models.layers import default_blocks, layer_graph, resolve_layers, spatial_area, split_model

#: the default decoder's channels per feature level
DEFAULT_WIDTH = 32
#: layer-name prefix of the trainable decoder of a default explainer
DECODER = "learned_decoder"
#: values of the ``explainer`` option besides a keras.Model or a .keras path
SHIPPED = "demo"       # the explainer trained for tfxattr's demo model (scripts/train_demo_explainer.py)
UNTRAINED = "untrained"  # a randomly initialised default explainer over the model's features (tests, timing)
NAMED = (SHIPPED, UNTRAINED)
_ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
DEMO_EXPLAINER = os.path.join(_ASSETS, "demo_explainer.keras")
DEMO_EXPLAINER_INFO = os.path.join(_ASSETS, "demo_explainer.json")
_LOADED = {}  # (path, mtime) -> keras.Model: a file is read once per process


def network_input_shape(adapter) -> tuple:
    """(H, W, C) of what the network reads (after the adapter's preprocess)."""
    km = adapter.keras_model
    if km is not None:
        return tuple(km.inputs[0].shape[1:])
    probe = tf.zeros((1,) + tuple(s or 32 for s in adapter.input_shape))
    return tuple((adapter.preprocess(probe) if adapter.preprocess is not None else probe).shape[1:])


def build_explainer(model, *, backbone=None, layers: Optional[Sequence[str]] = None, width: int = DEFAULT_WIDTH,
                    seed: int = 0) -> keras.Model:
    """A default explainer for ``model`` (anything :func:`tfxattr.as_model` takes).

    ``backbone``: a ``keras.Model`` from the network input to one or more (N, h, w, C) feature maps
    (frozen here); None: a frozen copy of ``model`` cut at ``layers`` (default:
    :func:`default_feature_layers`). ``width``: decoder channels. ``seed``: initialisation.
    """
    from ..models import as_model

    adapter = as_model(model)
    positive_int(width, "width")
    shape = network_input_shape(adapter)
    inp = keras.Input(shape, name="network_input")
    if backbone is None:
        km = adapter.keras_model
        if km is None:
            raise ValueError(f"model {adapter.name!r} is not a Keras model, so its features cannot serve as the "
                             "explainer's encoder; pass backbone=<keras.Model> (network input -> feature maps)")
        names = list(dict.fromkeys(resolve_layers(km, list(layers)) if layers else default_feature_layers(km)))
        stages = split_model(km, names)[:-1]  # stem (and middle): input -> each named layer
        x = start = keras.Input(shape)
        outs = []
        for stage in stages:
            x = stage(x)
            outs.append(x)
        encoder = _frozen_copy(keras.Model(start, outs, name="encoder"))
    else:
        if not isinstance(backbone, keras.Model):
            raise ValueError(f"backbone must be a keras.Model (network input -> feature maps), got {type(backbone)}")
        encoder = _frozen_copy(backbone)
    features = encoder(inp, training=False)
    features = list(features) if isinstance(features, (list, tuple)) else [features]
    for f in features:
        if len(f.shape) != 4:
            raise ValueError(f"backbone/layers must give (N, h, w, C) feature maps, got one of shape {tuple(f.shape)}")
    features.sort(key=lambda f: -(f.shape[1] or 0))  # finest first
    init = lambda k: keras.initializers.HeUniform(seed=seed + k)  # noqa: E731
    x = None
    for k, f in enumerate(reversed(features)):  # coarsest first, top-down
        p = keras.layers.Conv2D(width, 1, activation="relu", kernel_initializer=init(k), name=f"{DECODER}_proj{k}")(f)
        if x is not None:
            x = keras.layers.Resizing(p.shape[1], p.shape[2], interpolation="bilinear", name=f"{DECODER}_up{k}")(x)
            x = keras.layers.Add(name=f"{DECODER}_add{k}")([x, p])
        else:
            x = p
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", kernel_initializer=init(10 + k),
                                name=f"{DECODER}_fuse{k}")(x)
    out = keras.layers.Conv2D(adapter.num_classes, 1, kernel_initializer=keras.initializers.GlorotUniform(seed + 99),
                              name=f"{DECODER}_maps")(x)
    return keras.Model(inp, out, name="tfxattr_learned_explainer")


def default_feature_layers(model) -> list:
    """The model's penultimate and last blocks (as IIA and Grad-CAM find them) and, when there is one, the
    last valid 4-D split layer of at least 4x the penultimate block's area (a stage earlier: finer maps)."""
    last, penultimate = default_blocks(model)
    graph = layer_graph(model)
    area = lambda name: spatial_area(graph.shapes[graph.split_key(name)])  # noqa: E731
    valid = graph.valid_names(ndim=4)
    before = valid[:valid.index(penultimate)] if penultimate in valid else []
    finer = [n for n in before if None not in (area(n), area(penultimate)) and area(n) >= 4 * area(penultimate)]
    return ([finer[-1]] if finer else []) + [penultimate, last]


def _frozen_copy(model: keras.Model) -> keras.Model:
    """An independent, non-trainable copy (freezing the original would change the user's model)."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.trainable = False
    return copy


def weights_fingerprint(model) -> str:
    """sha256 of a Keras model's weights (which model a shipped explainer was trained for)."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w, np.float32).tobytes())
    return h.hexdigest()


def load_explainer(explainer, adapter, seed: int = 0) -> keras.Model:
    """The explainer named by the ``explainer`` option, checked against ``adapter``: a keras.Model, a
    ``.keras`` path, ``"demo"`` (the shipped one, for the demo model only) or ``"untrained"``."""
    if isinstance(explainer, keras.Model):
        model = explainer
    elif explainer == UNTRAINED:
        model = build_explainer(adapter, seed=seed)
    elif explainer == SHIPPED:
        _check_demo_model(adapter)
        model = _load(DEMO_EXPLAINER)
    elif isinstance(explainer, (str, os.PathLike)) and os.fspath(explainer).endswith(".keras"):
        model = _load(os.fspath(explainer))
    else:
        raise ValueError(f"explainer must be a keras.Model, a .keras file, {SHIPPED!r} or {UNTRAINED!r}, got "
                         f"{explainer!r}{did_you_mean(explainer, NAMED)}")
    check_explainer(model, adapter)
    return model


def _load(path: str) -> keras.Model:
    if not os.path.isfile(path):
        hint = "; it is made by `python scripts/train_demo_explainer.py`" if path == DEMO_EXPLAINER else ""
        raise ValueError(f"explainer: no file {path!r}{hint}")
    key = (path, os.path.getmtime(path))
    if key not in _LOADED:
        _LOADED[key] = keras.models.load_model(path, compile=False)
    return _LOADED[key]


def _check_demo_model(adapter):
    with open(DEMO_EXPLAINER_INFO) as f:
        info = json.load(f)
    km = adapter.keras_model
    if km is None or weights_fingerprint(km) != info["model_fingerprint"]:
        raise ValueError(f"explainer='demo' was trained for tfxattr's demo model only, not {adapter.name!r}; train one "
                         "for this model with tfxattr.learn.train_explainer and pass explainer=<keras.Model or path>")


def check_explainer(explainer: keras.Model, adapter):
    """ValueError naming ``explainer`` unless it reads the network input and returns (N, h, w, 1 or K)."""
    want = network_input_shape(adapter)
    inputs = getattr(explainer, "inputs", None)
    if inputs is not None and len(inputs) != 1:
        raise ValueError(f"explainer must take one input (the network input {want}), it takes {len(inputs)}")
    if inputs:
        got = tuple(inputs[0].shape[1:])
        if any(g is not None and w is not None and g != w for g, w in zip(got, want)) or len(got) != len(want):
            raise ValueError(f"explainer reads inputs of shape {got}, but the model reads {want}")
    out = explainer(tf.zeros((1,) + tuple(s or 32 for s in want)), training=False)
    classes = adapter.num_classes
    if len(out.shape) != 4 or out.shape[-1] not in (1, classes) or out.shape[0] != 1:
        raise ValueError(f"explainer must return (N, h, w, {classes}) maps (one per class) or (N, h, w, 1); it "
                         f"returns {tuple(out.shape)} for one image")


def explainer_maps(explainer: keras.Model, adapter, images, targets) -> tf.Tensor:
    """(N, H, W) raw maps of ``targets`` at the images' size (differentiable in the explainer's weights)."""
    x = tf.convert_to_tensor(images, tf.float32)
    z = adapter.preprocess(x) if adapter.preprocess is not None else x
    out = tf.cast(explainer(z, training=False), tf.float32)
    if out.shape[-1] == 1:
        out = out[..., 0]
    else:
        out = tf.gather(tf.transpose(out, [0, 3, 1, 2]), tf.reshape(tf.cast(targets, tf.int32), [-1]), axis=1,
                        batch_dims=1)
    h, w = x.shape[1], x.shape[2]
    if (out.shape[1], out.shape[2]) != (h, w):
        out = tf.image.resize(out[..., None], (h, w), method="bilinear")[..., 0]
    return out
