"""PAIR interop: our call_model_function runs PAIR methods; our methods run as PAIR CoreSaliency."""
import numpy as np
import pytest
import saliency.core as saliency_core
from saliency.core.base import INPUT_OUTPUT_GRADIENTS, OUTPUT_LAYER_VALUES

import tfxattr
from tfxattr.interop import (BlurIGIDGI, GuidedIGIDGI, IntegratedGradientsIDGI, TfxattrSaliency,
                             call_model_function)


def test_call_model_function_contract(tiny_model, tiny_images):
    cmf = call_model_function(tiny_model)
    out = cmf(tiny_images.astype(np.float64), call_model_args={"class_idx_str": 2},
              expected_keys=[INPUT_OUTPUT_GRADIENTS, OUTPUT_LAYER_VALUES])
    assert out[INPUT_OUTPUT_GRADIENTS].shape == tiny_images.shape
    assert out[INPUT_OUTPUT_GRADIENTS].dtype == np.float64
    np.testing.assert_allclose(out[OUTPUT_LAYER_VALUES], tiny_model(tiny_images).numpy()[:, 2], rtol=1e-5)
    saliency_core.CoreSaliency().format_and_check_call_model_output(
        out, tiny_images.shape, [INPUT_OUTPUT_GRADIENTS, OUTPUT_LAYER_VALUES])


@pytest.mark.parametrize("cls,name", [(IntegratedGradientsIDGI, "ig+idgi"), (GuidedIGIDGI, "guided_ig+idgi"),
                                      (BlurIGIDGI, "blur_ig+idgi")])
def test_idgi_core_saliency_equals_explain(tiny_model, tiny_images, cls, name):
    cmf = call_model_function(tiny_model, target=1)
    mask = cls().GetMask(tiny_images[0], cmf, x_steps=6) if name != "blur_ig+idgi" else \
        cls().GetMask(tiny_images[0], cmf, steps=6)
    ours = tfxattr.explain(tiny_model, tiny_images[0], name, target=1, steps=6).attribution
    np.testing.assert_allclose(mask, ours, rtol=1e-4, atol=1e-6)


def test_core_saliency_accepts_a_foreign_call_model_function(tiny_model, tiny_images):
    import tensorflow as tf

    def foreign(x, call_model_args=None, expected_keys=None):  # returns all logits, like many notebooks
        x = tf.constant(x, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = tiny_model(x)
            score = logits[:, call_model_args.get("target", call_model_args.get("cls"))]
        return {INPUT_OUTPUT_GRADIENTS: tape.gradient(score, x).numpy(), OUTPUT_LAYER_VALUES: logits.numpy()}

    mask = IntegratedGradientsIDGI().GetMask(tiny_images[0], foreign, {"target": 3}, x_steps=5, batch_size=2)
    ours = tfxattr.explain(tiny_model, tiny_images[0], "ig+idgi", target=3, steps=5).attribution
    np.testing.assert_allclose(mask, ours, rtol=1e-4, atol=1e-6)
    smoothed = IntegratedGradientsIDGI().GetSmoothedMask(tiny_images[0], foreign, {"target": 3}, nsamples=2, x_steps=3)
    assert smoothed.shape == tiny_images[0].shape and np.all(np.isfinite(smoothed))
    with pytest.raises(ValueError, match="target"):
        IntegratedGradientsIDGI().GetMask(tiny_images[0], foreign, {"cls": 1}, x_steps=3)


def test_idgi_mask_as_xrai_base_attribution(tiny_model, tiny_images):
    cmf = call_model_function(tiny_model, target=0)
    base = TfxattrSaliency("ig+idgi", steps=4).GetMask(tiny_images[0], cmf)
    xrai = saliency_core.XRAI().GetMask(tiny_images[0], cmf, base_attribution=base)
    assert xrai.shape == tiny_images[0].shape[:2] and np.all(np.isfinite(xrai))


def test_bad_method_or_image_shape():
    with pytest.raises(ValueError, match="unknown method"):
        TfxattrSaliency("nope")
    with pytest.raises(ValueError, match="x_value"):
        TfxattrSaliency("ig").GetMask(np.zeros((2, 4, 4, 3)), lambda *a, **k: {})
