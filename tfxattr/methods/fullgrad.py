"""FullGrad (Srinivas & Fleuret, "Full-Gradient Representation for Neural Network Visualization",
NeurIPS 2019, Eq. 2-4 and Sec. 4).

For a ReLU network with biases, the full-gradient decomposition (Eq. 2) is exact::

    f_c(x) = <df_c/dx, x> + sum_l sum_c <df_c/dz_l, b_l>           (completeness)

with ``z_l`` the output of each layer with a bias ``b_l`` (before its activation) and the sum over
every unit. The FullGrad saliency map (Eq. 4) post-processes the input-gradient term and each
spatial bias-gradient map ``df_c/dz_l * b_l`` with ``psi`` = absolute value, min-max normalisation
per image, bilinear resize to the input (Sec. 4), and sums them over layers and channels::

    S = psi(df_c/dx * x) + sum_l sum_c psi(df_c/dz_l * b_l)

Biases: every convolution (any ``Conv*`` layer with a bias) and every BatchNormalization, whose
implicit inference-time bias is ``beta - gamma * mean / sqrt(var + eps)``; dense biases enter the
completeness sum but not the map (they have no spatial extent), as in the authors' code. A layer with
a fused activation (``Conv2D(..., activation="relu")``) is run without it and the activation
applied after, to reach ``z_l``. ``df_c/dx * x`` is taken in pixel space, so every offset between the
pixels and the network is an implicit bias too, counted in the completeness sum and, with the
input's spatial extent, in the map: the offset of a ``Rescaling(scale, offset)`` layer, the
``-mean / std`` of a ``Normalization`` layer (each one's value at 0, wherever it sits in the model), and
``p(0)`` of the preprocessing ``p`` outside the model (the adapter's linear map from ``pixel_range`` onto
the model's ``input_range``, and ``preprocess=``, e.g. a Keras application's mean subtraction). The
decomposition is exact (``checkCompleteness`` in the authors' code) for networks whose layers are
piecewise linear plus those biases: ReLU/LeakyReLU, max/average pooling, padding, conv, dense, BN,
affine preprocessing. Not counted, so completeness only holds approximately: a non-affine
``preprocess``, smooth activations (swish, GELU, sigmoid, tanh), saturating ones (ReLU6's cap is a
constant the gradient does not see), LayerNormalization, and constants added inside Lambda layers or
``keras.ops`` calls. The model runs layer by layer through its flattened graph (nested models included)
in one ``tf.function`` per chunk of ``batch_size`` images; attributions are (N, H, W, 1).

Resizing follows the authors (``F.interpolate(..., mode="bilinear", align_corners=True)``): TensorFlow's
``ResizeBilinear`` with ``align_corners=True`` (``tf.image.resize`` has only half-pixel centres, whose
maps rank pixels with Spearman 0.96-0.99 against the authors').
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..batching import as_rows, chunk_map, finish, rows
from ..models.compat import graph_function
from ..models.layers import input_spec, layer_chain, layer_graph
from .base import Method

# the authors' post-processing guard: x / (max + eps) after subtracting the min
NORMALISE_EPS = 1e-6
# elementwise affine layers (pixel normalisation) whose offset ``layer(0)`` is an implicit bias
AFFINE_LAYERS = ("Rescaling", "Normalization")


class FullGrad(Method):
    name = "fullgrad"
    summary = "FullGrad (Srinivas & Fleuret 2019): input-gradient x input + bias-gradients of every conv/BN layer"
    defaults = {}
    architecture = "cnn"  # conv/BN bias-gradient maps; a ViT's biases live on tokens

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        chain = layer_chain(evaluator, [], self.name)
        x, t = as_rows(images, targets)
        h, w = x.shape[1:3]
        fn = chain.function(f"fullgrad_{h}x{w}", lambda: self.build(chain))
        (out,) = chunk_map(lambda x, t: (fn(x, t),), [tf.float32], rows(x), evaluator.batch_size, x, t)
        return finish(out)

    @staticmethod
    def build(chain):
        """The saliency map as a ``tf.function(images, targets) -> (N, H, W, 1)``."""
        def saliency(x, targets):
            size = tf.shape(x)[1:3]
            f, (gx, spatial, _) = full_gradients(chain, x, targets)
            total = tf.reduce_sum(normalise(tf.abs(gx * x)), axis=-1, keepdims=True)
            for grad_bias in spatial:
                m = tf.reduce_sum(normalise(tf.abs(grad_bias)), axis=-1, keepdims=True)
                total += resize(m, size)  # resize and channel sum commute
            return total
        return graph_function(saliency, input_signature=[input_spec(chain.stages[0]), tf.TensorSpec([None], tf.int32)])


def resize(t, size):
    """Bilinear resize with ``align_corners=True``, as the authors' ``F.interpolate`` (corner pixels of the
    map land on the corner pixels of the image; an input-sized map is unchanged)."""
    return tf.raw_ops.ResizeBilinear(images=t, size=tf.cast(size, tf.int32), align_corners=True,
                                     half_pixel_centers=False)


def normalise(t):
    """Per image: ``(t - min) / (max + eps)`` after the min is subtracted (the authors' ``_postProcess``)."""
    axes = list(range(1, t.shape.rank))
    t = t - tf.reduce_min(t, axis=axes, keepdims=True)
    return t / (tf.reduce_max(t, axis=axes, keepdims=True) + NORMALISE_EPS)


def full_gradients(chain, x, targets):
    """``f_c(x)`` and its full gradients: ``(df_c/dx, [df_c/dz_l * b_l for spatial l], [sum over units of
    df_c/dz_l * b_l for the other (dense) layers])``, running the model of ``chain`` layer by layer."""
    graph = layer_graph(chain.stages[0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        taps = []  # (pre-activation z_l, its bias b_l)
        if chain.preprocess is None:
            values = {graph.source: x}
        else:  # an affine preprocess p(x) = A x + p(0): its offset p(0) is a bias at the input's resolution
            z = chain.preprocess(x)
            values = {graph.source: z}
            taps.append((z, chain.preprocess(tf.zeros_like(x[:1]))))
        for step in graph.steps:
            args, kwargs = step.fill(values)
            if step.layer is None:
                out = args[0]
            else:
                out, tap = _call(step.layer, args, kwargs)
                if tap is not None:
                    taps.append(tap)
            for key, value in zip(step.outputs, keras.tree.flatten(out)):
                values[key] = value
        f = chain.objective.explained(values[graph.sink], targets)
    grads = tape.gradient(f, [x] + [z for z, _ in taps])
    spatial, other = [], []
    for g, (z, b) in zip(grads[1:], taps):
        term = (tf.zeros_like(z) if g is None else g) * tf.cast(b, z.dtype)
        if z.shape.rank == 4:
            spatial.append(term)
        else:
            other.append(tf.reduce_sum(term, axis=list(range(1, z.shape.rank))))
    return f, (grads[0], spatial, other)


def _call(layer, args, kwargs):
    """``(output, (z, bias) or None)``: the layer's output and, for a layer with a bias, its
    pre-activation output and (effective) bias."""
    kwargs = {**kwargs, "training": False}
    if type(layer).__name__ in AFFINE_LAYERS:
        z = layer(*args, **kwargs)
        if isinstance(layer, keras.layers.Rescaling) and not np.any(np.asarray(layer.offset, np.float64)):
            return z, None  # Rescaling(scale) alone: no offset, no bias
        return z, (z, layer(tf.zeros_like(args[0][:1]), **kwargs))  # the layer's value at 0 is its bias
    bias = _bias(layer, getattr(args[0], "shape", None) if args else None)
    if bias is None:
        return layer(*args, **kwargs), None
    activation = getattr(layer, "activation", None)
    if activation is None or activation is keras.activations.linear:
        z = layer(*args, **kwargs)
        return z, (z, bias)
    layer.activation = keras.activations.linear  # reach z_l behind a fused activation
    try:
        z = layer(*args, **kwargs)
    finally:
        layer.activation = activation
    return activation(z), (z, bias)


def _bias(layer, shape):
    """The bias a layer adds to its output's last axis (None: it adds none)."""
    if isinstance(layer, keras.layers.BatchNormalization):
        if layer.axis not in (-1, None if shape is None else len(shape) - 1):
            raise ValueError(f"fullgrad needs channels-last BatchNormalization; {layer.name!r} normalises axis "
                             f"{layer.axis}")
        inv = tf.math.rsqrt(tf.convert_to_tensor(layer.moving_variance) + layer.epsilon)
        gamma = tf.convert_to_tensor(layer.gamma) if layer.scale else 1.0
        beta = tf.convert_to_tensor(layer.beta) if layer.center else 0.0
        return beta - gamma * tf.convert_to_tensor(layer.moving_mean) * inv
    bias = getattr(layer, "bias", None)
    if bias is None or not getattr(layer, "use_bias", True):
        return None
    return tf.convert_to_tensor(bias)
