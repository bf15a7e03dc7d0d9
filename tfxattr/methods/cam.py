"""What every class activation map shares: the layer, its activations, and ``L = ReLU(sum_k w_k A_k)``.

A CAM method explains at a layer ``A`` (a valid split point with an (N, h, w, C) output; default: the
model's last block, from ``keras_apps`` for a Keras application, else the last valid 4-D split point)
and differs only in its weights ``w`` (per channel (N, 1, 1, C), or per unit (N, h, w, C)). The map is
resized bilinearly to the input: attributions are (N, H, W, 1). Gradient CAMs (Grad-CAM and kin,
:mod:`.gradcam`) compute the weights from one backward pass; perturbation CAMs (Ablation-CAM,
Score-CAM) override :meth:`CAM.channel_weights` and run their perturbed rows in chunks of ``batch_size``.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..batching import spans
from ..checks import boolean
from ..models.layers import input_spec, keras_model_of, layer_chain, layer_graph, resolve_layers
from .base import Method


class CAM(Method):
    """Base class: ``layer`` ("last_block" or a layer name/path), ``app`` (Keras application whose
    blocks to use), ``relu`` (the final ReLU of every CAM paper; False keeps the signed map)."""
    defaults = {"layer": "last_block", "app": None, "relu": True}

    def validate(self):
        for key in ("layer", "app"):
            v = self.options[key]
            if v is not None and not (isinstance(v, str) and v):
                raise ValueError(f"{key} must be a layer/application name or None, got {v!r}")
        boolean(self.options["relu"], "relu")

    def layer(self, evaluator) -> str:
        """The full path of the layer this method explains at."""
        model = keras_model_of(evaluator, self.name)
        path = resolve_layers(model, [self.options["layer"] or "last_block"], self.options["app"],
                              getattr(evaluator, "name", None))[0]
        graph = layer_graph(model)
        key = graph.split_key(path)
        if len(graph.shapes[key]) != 4:
            raise ValueError(f"layer {path!r} has output shape {graph.shapes[key]}; {self.name} needs an "
                             f"(N, H, W, C) layer. Valid 4-D split layers: {graph.valid_names(ndim=4)[-20:]}")
        return path

    def chain(self, evaluator):
        """The model cut at :meth:`layer`: ``stage(0, pixels) = A``, ``explained(A, targets) = f_c``."""
        return layer_chain(evaluator, [self.layer(evaluator)], self.name)

    # -- perturbation CAMs ------------------------------------------------------------------------
    def channel_weights(self, evaluator, chain, activations, images, targets) -> np.ndarray:
        """(n, C) weights of the channels of ``activations`` (n, h, w, C) of ``images`` (n, H, W, C)."""
        raise NotImplementedError

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        chain = self.chain(evaluator)
        stem = chain.function("cam_stem", lambda: tf.function(
            lambda x: chain.stage(0, x), input_signature=[input_spec(chain.stages[0])]))
        targets = np.asarray(targets, np.int32)
        out = []
        for span in spans(len(images), evaluator.batch_size):
            a = stem(tf.constant(images[span]))
            w = self.channel_weights(evaluator, chain, a, images[span], targets[span])
            w = tf.reshape(tf.constant(w, tf.float32), [len(w), 1, 1, -1])
            out.append(cam_map(a, w, images.shape[1:3], self.options["relu"]).numpy())
        return np.concatenate(out).astype(np.float32)


def cam_map(activations, weights, size, relu: bool = True):
    """``ReLU(sum_k w_k A_k)`` (N, h, w, 1) resized bilinearly to ``size``: (N, H, W, 1)."""
    m = tf.reduce_sum(tf.cast(weights, activations.dtype) * activations, axis=-1, keepdims=True)
    if relu:
        m = tf.nn.relu(m)
    return tf.image.resize(tf.cast(m, tf.float32), size, method="bilinear")


def channel_rows(n_images: int, channels) -> np.ndarray:
    """(image, channel) rows, image-major, for perturbation CAMs that run one row per channel."""
    channels = np.asarray(channels)
    if channels.ndim == 1:
        channels = np.tile(channels, (n_images, 1))
    return np.stack([np.repeat(np.arange(n_images), channels.shape[1]), channels.reshape(-1)], 1)
