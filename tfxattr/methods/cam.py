"""What every class activation map shares: the layer, its activations, and ``L = ReLU(sum_k w_k A_k)``.

A CAM method explains at a layer ``A`` (a valid split point with an (N, h, w, C) output; default: the
model's last block, from ``keras_apps`` for a Keras application, else the last valid 4-D split point)
and differs only in its weights ``w`` (per channel (N, 1, 1, C), or per unit (N, h, w, C)). The map is
resized bilinearly to the input: attributions are (N, H, W, 1). Gradient CAMs (Grad-CAM and kin,
:mod:`.gradcam`) compute the weights from one backward pass; perturbation CAMs (Ablation-CAM,
Score-CAM) override :meth:`CAM.channel_weights` and run their perturbed rows in chunks of ``batch_size``.
"""
from __future__ import annotations

import tensorflow as tf

from ..batching import as_rows, chunk_map, finish, rows
from ..checks import boolean
from ..models.compat import graph_function
from ..models.layers import input_spec, keras_model_of, layer_chain, layer_graph, resolve_layers
from .base import Method


class CAM(Method):
    """Base class: ``layer`` ("last_block" or a layer name/path), ``app`` (Keras application whose
    blocks to use), ``relu`` (the final ReLU of every CAM paper; False keeps the signed map)."""
    defaults = {"layer": "last_block", "app": None, "relu": True}
    architecture = "cnn"  # explains an (N, h, w, C) activation map

    def validate(self):
        for key in ("layer", "app"):
            v = self.options[key]
            if v is not None and not (isinstance(v, str) and v):
                raise ValueError(f"{key} must be a layer/application name or None, got {v!r}")
        boolean(self.options["relu"], "relu")

    def layer(self, evaluator) -> str:
        """The full path of the layer this method explains at."""
        model = keras_model_of(evaluator, self.name)
        name = self.options["layer"] or "last_block"
        try:
            path = resolve_layers(model, [name], self.options["app"], getattr(evaluator, "name", None), ndim=4)[0]
        except ValueError as err:
            raise ValueError(f"{self.name}: layer={name!r}: {err}") from None
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
    def channel_weights(self, evaluator, chain, activations, images, targets):
        """(n, C) float32 weights of the channels of ``activations`` (n, h, w, C) of ``images`` (n, H, W, C),
        as TensorFlow ops (the chunk's rows: eager, or traced by export)."""
        raise NotImplementedError

    def stem(self, chain):
        """``pixels -> A`` as a tf.function (traced once per model; callable inside another tf.function)."""
        return chain.function("cam_stem", lambda: graph_function(
            lambda x: chain.stage(0, x), input_signature=[input_spec(chain.stages[0])]))

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        chain = self.chain(evaluator)
        stem = self.stem(chain)
        x, t = as_rows(images, targets)
        size, relu = tuple(x.shape[1:3]), self.options["relu"]

        def chunk(x, t):
            a = stem(x)
            w = self.channel_weights(evaluator, chain, a, x, t)
            return (cam_map(a, w[:, None, None, :], size, relu),)
        (out,) = chunk_map(chunk, [tf.float32], rows(x), evaluator.batch_size, x, t)
        return finish(out)


def cam_map(activations, weights, size, relu: bool = True):
    """``ReLU(sum_k w_k A_k)`` (N, h, w, 1) resized bilinearly to ``size``: (N, H, W, 1)."""
    m = tf.reduce_sum(tf.cast(weights, activations.dtype) * activations, axis=-1, keepdims=True)
    if relu:
        m = tf.nn.relu(m)
    return tf.image.resize(tf.cast(m, tf.float32), size, method="bilinear")


def channel_rows(n, channels):
    """(image, channel) rows of ``n`` images x ``channels`` (n, K) channel ids, image-major, as two int32
    tensors: perturbation CAMs run one row per (image, channel)."""
    k = tf.shape(channels)[1]
    return tf.repeat(tf.range(n), k), tf.reshape(channels, [-1])


def row_values(fn, n_rows, batch_size: int, *rows_):
    """``fn(*row_chunk) -> (rows,)`` float32 values over ``rows_`` in chunks of ``batch_size``, concatenated."""
    return chunk_map(lambda *r: (tf.cast(fn(*r), tf.float32),), [tf.float32], n_rows, batch_size, *rows_)[0]
