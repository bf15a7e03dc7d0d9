"""Layer-CAM (Jiang et al., "LayerCAM: Exploring Hierarchical Class Activation Maps for Localization",
IEEE TIP 2021, Sec. 3;
its equations are cited by formula, not number: the paper is not in seeds/).

Each unit of the layer gets its own weight, the positive part of its gradient: ``w_ijk = ReLU(g_ijk)``,
``A^_k = w_k * A_k``, ``L = ReLU(sum_k A^_k)``, so the map stays reliable at
shallow layers where gradients vary in space; at a layer followed by global average pooling the
gradient is constant in space and Layer-CAM is Grad-CAM with negative weights zeroed.
Any valid 4-D layer (``layer=``; default: the last block).
"""
from __future__ import annotations

import tensorflow as tf

from .gradcam import GradCAM


class LayerCAM(GradCAM):
    name = "layercam"
    summary = "Layer-CAM (Jiang et al. 2021): positive gradients as per-unit weights, at any layer"

    @staticmethod
    def weights(activations, gradients, values, head):
        return tf.nn.relu(gradients)
