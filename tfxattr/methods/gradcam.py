"""Grad-CAM (Selvaraju et al., ICCV 2017, Eq. 1-2) and Grad-CAM++ (Chattopadhay et al., WACV 2018, Eq. 19).

At a layer ``A`` (a valid split point with (N, h, w, C) output), with ``g = df_c/dA`` the gradient of
the *explained class* score (never of the whole output vector):

* Grad-CAM:   ``w_k = mean_ij g_ijk``,                 ``L = ReLU(sum_k w_k A_k)``
* Grad-CAM++: ``alpha = g^2 / (2 g^2 + sum_ab A_abk g^3)``, ``w_k = sum_ij alpha_ijk ReLU(g_ijk)``,
  ``L = ReLU(sum_k w_k A_k)``. The paper's ``exp(S_c)`` factor (it explains ``exp`` of the score) is a
  positive per-image constant and is left out.

``L`` is resized bilinearly to the input: attributions are (N, H, W, 1). The default layer is the
model's last block (``keras_apps`` for a Keras application, else the last valid 4-D split point).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..batching import spans
from ..checks import boolean
from ..models.layers import keras_model_of, layer_chain, layer_graph, resolve_layers
from .base import Method


class GradCAM(Method):
    name = "gradcam"
    summary = "Grad-CAM at a layer (default: the last block), class-specific, batched"
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

    @staticmethod
    def weights(activations, gradients):
        return tf.reduce_mean(gradients, axis=[1, 2], keepdims=True)

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        chain = layer_chain(evaluator, [self.layer(evaluator)], self.name)
        h, w = images.shape[1:3]
        fn = chain.function(f"{self.name}_{self.options['relu']}_{h}x{w}", lambda: self._build(chain, (h, w)))
        targets = np.asarray(targets, np.int32)
        out = [fn(tf.constant(images[span]), tf.constant(targets[span]))
               for span in spans(len(images), evaluator.batch_size)]
        return np.concatenate([o.numpy() for o in out]).astype(np.float32)

    def _build(self, chain, size):
        relu = self.options["relu"]
        weights = self.weights

        def cam(x, targets):
            a = chain.stage(0, x)
            with tf.GradientTape() as tape:
                tape.watch(a)
                f = chain.explained(a, targets)
            g = tape.gradient(f, a)
            m = tf.reduce_sum(weights(a, g) * a, axis=-1, keepdims=True)
            if relu:
                m = tf.nn.relu(m)
            return tf.image.resize(m, size, method="bilinear")
        spec = tf.TensorSpec([None] + list(chain.stages[0].inputs[0].shape[1:]), tf.float32)
        return tf.function(cam, input_signature=[spec, tf.TensorSpec([None], tf.int32)])


class GradCAMPlusPlus(GradCAM):
    name = "gradcam++"
    summary = "Grad-CAM++ at a layer (default: the last block), class-specific, batched"

    @staticmethod
    def weights(activations, gradients):
        g2 = tf.square(gradients)
        denom = 2.0 * g2 + tf.reduce_sum(activations, axis=[1, 2], keepdims=True) * g2 * gradients
        alpha = tf.math.divide_no_nan(g2, denom)
        return tf.reduce_sum(alpha * tf.nn.relu(gradients), axis=[1, 2], keepdims=True)
