"""XGrad-CAM (Fu et al., "Axiom-based Grad-CAM", BMVC 2020, Sec. 3;
its equations are cited by formula, not number: the paper is not in seeds/).

The weights that best satisfy the paper's two axioms, *sensitivity* (``sum_ij w_k A_ijk`` is the
drop of ``f_c`` when channel ``k`` is removed) and *conservation* (``sum_ij L_ij = f_c``), are the
activation-weighted gradients::

    w_k = sum_ij (A_ijk / sum_ab A_abk) g_ijk ,        L = ReLU(sum_k w_k A_k)

For a head linear in ``A`` (global average pooling + dense, as most CNNs end) both axioms hold
exactly, up to the head's bias. A channel that is zero everywhere gets weight 0.
"""
from __future__ import annotations

import tensorflow as tf

from .gradcam import GradCAM


class XGradCAM(GradCAM):
    name = "xgradcam"
    summary = "XGrad-CAM (Fu et al. 2020): activation-weighted gradients (sensitivity + conservation axioms)"

    @staticmethod
    def weights(activations, gradients, values, head):
        share = tf.math.divide_no_nan(activations, tf.reduce_sum(activations, axis=[1, 2], keepdims=True))
        return tf.reduce_sum(share * gradients, axis=[1, 2], keepdims=True)
