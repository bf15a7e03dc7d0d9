"""Layer-CAM (Jiang et al. 2021): per-unit weights ReLU(g); at a layer followed by global average
pooling with positive class weights it is Grad-CAM (the paper's argument for the last layer)."""
import numpy as np

import tfxattr
from tests.methods.cam_reference import IMAGES, TARGETS, cnn, layer_tensors, resized_cam
from tfxattr.methods.layercam import LayerCAM


def test_matches_the_per_unit_formula_at_a_shallow_layer():
    model = cnn()
    _, a, g, _ = layer_tensors(LayerCAM(layer="c1"), model)
    assert np.ptp(g.numpy(), axis=(1, 2)).max() > 0  # gradients vary in space at c1: not a Grad-CAM case
    e = tfxattr.explain(model, IMAGES, "layercam", targets=TARGETS, layer="c1", batch_size=2)
    np.testing.assert_allclose(e.attribution, resized_cam(a, np.maximum(g.numpy(), 0)), rtol=1e-5, atol=1e-6)
    grad_cam = tfxattr.explain(model, IMAGES, "gradcam", targets=TARGETS, layer="c1").attribution
    assert not np.allclose(e.attribution / e.attribution.max(), grad_cam / grad_cam.max(), atol=1e-2)


def test_equals_grad_cam_before_global_pooling_with_positive_gradients():
    model = cnn(positive_class=1)
    layer = tfxattr.explain(model, IMAGES, "layercam", targets=1, layer="c2").attribution
    grad = tfxattr.explain(model, IMAGES, "gradcam", targets=1, layer="c2").attribution
    assert layer.max() > 0
    np.testing.assert_allclose(layer, grad, rtol=1e-5, atol=1e-7)
