"""LIFT-CAM (Jung & Oh, "Towards Better Explanations of Class Activation Mapping", ICCV 2021, Sec. 3).

The weight of channel ``k`` approximates its SHAP value by DeepLIFT (Shrikumar et al. 2017) with the
zero activation as reference: ``w_k = sum_ij C_ijk``, ``C_ijk = m_ijk (A_ijk - 0)`` the contribution
of each unit to ``f_c(A) - f_c(0)``, and ``L = ReLU(sum_k w_k A_k)`` (cited by formula: the paper is
not in seeds/; the authors' code runs Captum's DeepLift on the layers after ``A``).

Multipliers ``m``: DeepLIFT's linear rule, ``m = df_c/dA``, exact when the head is linear in ``A``
(global pooling + dense, the case of every network in the paper, whose heads are explained on
logits). For a head with nonlinear units (hidden ReLUs, ``output="probability"``) we keep DeepLIFT's
summation-to-delta property (``sum C = f_c(A) - f_c(0)``, DeepLIFT Eq. 1) by rescaling the linear
contributions as one Rescale-rule unit: ``C = A * g * (f_c(A) - f_c(0)) / sum(A * g)`` — a
first-order approximation of the layer-by-layer Rescale rule, equal to it for linear heads.
"""
from __future__ import annotations

import tensorflow as tf

from .gradcam import GradCAM


class LIFTCAM(GradCAM):
    name = "liftcam"
    summary = "LIFT-CAM (Jung & Oh 2021): DeepLIFT contributions of each channel (zero reference) as weights"

    @staticmethod
    def weights(activations, gradients, values, head):
        linear = activations * gradients
        delta = values - head(tf.zeros_like(activations))  # f_c(A) - f_c(0)
        scale = tf.math.divide_no_nan(tf.cast(delta, linear.dtype), tf.reduce_sum(linear, axis=[1, 2, 3]))
        return tf.reduce_sum(linear, axis=[1, 2], keepdims=True) * tf.reshape(scale, [-1, 1, 1, 1])
