"""Grad-CAM (Selvaraju et al., ICCV 2017, Eq. 1-2) and Grad-CAM++ (Chattopadhay et al., WACV 2018, Eq. 19).

At a layer ``A`` (a valid split point with (N, h, w, C) output), with ``g = df_c/dA`` the gradient of
the *explained class* score (never of the whole output vector):

* Grad-CAM:   ``w_k = mean_ij g_ijk``,                 ``L = ReLU(sum_k w_k A_k)``
* Grad-CAM++: ``alpha = g^2 / (2 g^2 + sum_ab A_abk g^3)``, ``w_k = sum_ij alpha_ijk ReLU(g_ijk)``,
  ``L = ReLU(sum_k w_k A_k)``. The paper's ``exp(S_c)`` factor (it explains ``exp`` of the score) is a
  positive per-image constant and is left out.

``L`` is resized bilinearly to the input: attributions are (N, H, W, 1) (see :mod:`.cam`). The default layer is the
model's last block (``keras_apps`` for a Keras application, else the last valid 4-D split point).
"""
from __future__ import annotations

import tensorflow as tf

from ..batching import as_rows, chunk_map, finish, rows
from ..models.compat import graph_function
from ..models.layers import input_spec
from .cam import CAM, cam_map


class GradCAM(CAM):
    """Gradient CAMs: ``weights(A, g, f, head)`` from the activations, their gradient ``g = df_c/dA``,
    ``f = f_c(A)`` and ``head(A') = f_c(A')`` (for weights that evaluate the head elsewhere), one
    backward pass per chunk of ``batch_size`` images in one ``tf.function``."""
    name = "gradcam"
    summary = "Grad-CAM at a layer (default: the last block), class-specific, batched"

    @staticmethod
    def weights(activations, gradients, values, head):
        return tf.reduce_mean(gradients, axis=[1, 2], keepdims=True)

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        return self._run(evaluator, images, targets)[0]

    def attribute_and_scores(self, evaluator, images, targets, progress=False, seed=None):
        """The attributions, and ``f_c`` and the class probability of every image, which the backward pass
        computes anyway: explain() reports them without a forward pass of its own."""
        return self._run(evaluator, images, targets)

    def _run(self, evaluator, images, targets):
        chain = self.chain(evaluator)
        x, t = as_rows(images, targets)
        h, w = x.shape[1:3]
        fn = chain.function(f"{self.name}_{self.options['relu']}_{h}x{w}", lambda: self._build(chain, (h, w)))
        return tuple(finish(out) for out in chunk_map(fn, [tf.float32] * 3, rows(x), evaluator.batch_size, x, t))

    def _build(self, chain, size):
        relu = self.options["relu"]
        weights = self.weights

        def cam(x, targets):  # (map, f_c, class probability) of every row
            a = chain.stage(0, x)
            with tf.GradientTape() as tape:
                tape.watch(a)
                raw = chain.stage(len(chain.stages) - 1, a)
                f = chain.objective.explained(raw, targets)
            g = tape.gradient(f, a)
            p = tf.gather(chain.objective.probabilities(raw), targets, axis=1, batch_dims=1)
            return cam_map(a, weights(a, g, f, lambda v: chain.explained(v, targets)), size, relu), f, p
        return graph_function(cam, input_signature=[input_spec(chain.stages[0]), tf.TensorSpec([None], tf.int32)])


class GradCAMPlusPlus(GradCAM):
    name = "gradcam++"
    summary = "Grad-CAM++ at a layer (default: the last block), class-specific, batched"

    @staticmethod
    def weights(activations, gradients, values, head):
        g2 = tf.square(gradients)
        denom = 2.0 * g2 + tf.reduce_sum(activations, axis=[1, 2], keepdims=True) * g2 * gradients
        alpha = tf.math.divide_no_nan(g2, denom)
        return tf.reduce_sum(alpha * tf.nn.relu(gradients), axis=[1, 2], keepdims=True)
