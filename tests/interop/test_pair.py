"""PAIR interop: our call_model_function runs PAIR methods; our methods run as PAIR CoreSaliency."""
import numpy as np
import pytest
import saliency.core as saliency_core
from saliency.core.base import INPUT_OUTPUT_GRADIENTS, OUTPUT_LAYER_VALUES

import tfxattr
from tfxattr.interop import BlurIGIDGI, GuidedIGIDGI, IntegratedGradientsIDGI, TfxattrSaliency, call_model_function


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
    ours = tfxattr.explain(tiny_model, tiny_images[0], name, targets=1, steps=6).attribution
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
    ours = tfxattr.explain(tiny_model, tiny_images[0], "ig+idgi", targets=3, steps=5).attribution
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


# --------------------------------------------------------------------------- PairEvaluator honours targets
def pair_cmf(model, calls, all_logits=False):
    """A call_model_function written as in PAIR's examples: the class in call_model_args['class_idx_str']."""
    import tensorflow as tf

    def cmf(images, call_model_args=None, expected_keys=None):
        target = call_model_args["class_idx_str"]
        calls.append((len(images), target))
        x = tf.convert_to_tensor(images)
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = model(x)
            score = logits[:, target]
        out = {OUTPUT_LAYER_VALUES: (logits if all_logits else score).numpy()}
        if INPUT_OUTPUT_GRADIENTS in expected_keys:
            out[INPUT_OUTPUT_GRADIENTS] = tape.gradient(score, x).numpy()
        return out
    return cmf


@pytest.mark.parametrize("all_logits", [False, True])
@pytest.mark.parametrize("name,options", [("ig+idgi", {"steps": 5}), ("guided_ig", {"steps": 4}),
                                          ("blur_ig+idgi", {"steps": 4})])
def test_pair_evaluator_explains_each_image_for_its_own_target(tiny_model, tiny_images, name, options, all_logits):
    from tfxattr.interop import PairEvaluator

    calls = []
    evaluator = PairEvaluator(pair_cmf(tiny_model, calls, all_logits), {"class_idx_str": 0}, batch_size=3)
    images, targets = tiny_images[:2], np.array([1, 3], np.int32)
    got = tfxattr.methods.get_method(name, **options).attribute(evaluator, images, targets)
    ours = tfxattr.explain(tiny_model, images, name, targets=targets, **options).attribution
    np.testing.assert_allclose(got, ours, rtol=1e-4, atol=1e-6 * np.abs(ours).max())
    assert not np.allclose(got[1], tfxattr.explain(tiny_model, images[1], name, targets=1, **options).attribution)
    assert {t for _, t in calls} == {1, 3} and max(n for n, _ in calls) <= 3  # one target per call, chunked


def test_pair_evaluator_contract(tiny_model, tiny_images):
    import tensorflow as tf

    from tfxattr.interop import PairEvaluator
    from tfxattr.models.contracts import GradientEvaluator

    def own_class(x, call_model_args=None, expected_keys=None):  # takes no class: all logits, gradient of class 2
        x = tf.constant(x, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = tiny_model(x)
            score = logits[:, 2]
        return {OUTPUT_LAYER_VALUES: logits.numpy(), INPUT_OUTPUT_GRADIENTS: tape.gradient(score, x).numpy()}

    evaluator = PairEvaluator(own_class, batch_size=2)
    with pytest.raises(AttributeError, match="num_classes"):
        evaluator.num_classes
    assert not isinstance(evaluator, GradientEvaluator)  # nothing is known before a call
    logits = tiny_model(tiny_images).numpy()
    np.testing.assert_allclose(evaluator.scores(tiny_images), logits, rtol=1e-5)
    np.testing.assert_allclose(evaluator.values(tiny_images, [4, 0, 2]).numpy(), logits[[0, 1, 2], [4, 0, 2]],
                               rtol=1e-5)  # (N, classes) values: each row's own target
    assert evaluator.num_classes == 5 and evaluator.input_shape == (16, 16, 3)
    assert isinstance(evaluator, GradientEvaluator) and evaluator.pixel_range == (0.0, 255.0)
    with pytest.raises(ValueError, match="target"):
        evaluator.values(tiny_images, [-1, 0, 0])
    scalar = PairEvaluator(call_model_function(tiny_model, target=1), input_shape=(16, 16, 3), num_classes=5)
    assert isinstance(scalar, GradientEvaluator)
    with pytest.raises(ValueError, match="one value per example"):
        scalar.scores(tiny_images)
    with pytest.raises(ValueError, match="batch_size"):
        PairEvaluator(own_class, batch_size=0)
