"""One implementation for every door (STYLE.md, pattern I): each method's ``attribute`` run eagerly (explain())
equals the same ``attribute`` traced inside a ``tf.function`` with a free batch size (export), chunk by chunk."""
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import build_tiny_cnn, build_tiny_vit
from tfxattr.methods import METHODS, get_method
from tfxattr.models import as_model

SEED = 7
BATCH = 2  # smaller than the rows: several chunks run at every level

CNN_CASES = [
    ("gradient", {}), ("gradient", {"times_input": True}),
    ("smooth", {"samples": 3}), ("smooth", {"samples": 2, "inner": "gradcam", "magnitude": True}),
    ("occlusion", {"patch": 6, "stride": 3}), ("occlusion", {"patch": 4, "stride": 4, "baseline": "white"}),
    ("ablationcam", {}), ("scorecam", {}), ("scorecam", {"top_channels": 3}),
    ("gradcam", {}), ("gradcam++", {}), ("layercam", {}), ("xgradcam", {}), ("liftcam", {"relu": False}),
    ("fullgrad", {}), ("learned", {"explainer": "untrained"}),
    ("iia", {"steps": 3}), ("iia3", {"steps": 2}), ("iia", {"layers": ["input"], "steps": 4}),
    ("iia", {"steps": 2, "reference": "zero", "layers": ["conv1", "conv2"]}),
    ("rise", {"samples": 150, "grid": 4}),
]
VIT_CASES = [
    ("attention_rollout", {}), ("gradient_rollout", {}), ("gae", {}), ("iia_vit", {"steps": 2}),
    ("iia2_vit", {"steps": 2}), ("iia_vit", {"steps": 2, "integrate": "matrices", "layers": ["input", 0, 1]}),
]


@pytest.fixture(scope="module")
def cnn():
    return as_model(build_tiny_cnn(), batch_size=BATCH)


@pytest.fixture(scope="module")
def vit():
    return as_model(build_tiny_vit(), batch_size=BATCH)


@pytest.fixture(scope="module")
def rows():
    images = np.random.default_rng(0).uniform(0, 255, (5, 16, 16, 3)).astype(np.float32)
    return images, np.array([0, 1, 2, 3, 4], np.int32)


def traced(method, adapter, images, targets):
    spec = [tf.TensorSpec((None,) + images.shape[1:], tf.float32), tf.TensorSpec((None,), tf.int32)]
    fn = tf.function(lambda x, t: method.attribute(adapter, x, t, seed=SEED), input_signature=spec)
    return fn(tf.constant(images), tf.constant(targets)).numpy()


def check_doors(name, options, adapter, images, targets):
    method = get_method(name, **options)
    assert method.export_refusal() == ""
    eager = method.attribute(adapter, images, targets, seed=SEED)
    assert isinstance(eager, np.ndarray) and eager.dtype == np.float32
    graph = traced(method, adapter, images, targets)
    assert graph.shape == eager.shape
    scale = max(float(np.abs(eager).max()), 1e-30)
    np.testing.assert_allclose(graph, eager, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("name,options", CNN_CASES, ids=[f"{n}{o or ''}" for n, o in CNN_CASES])
def test_eager_equals_traced_on_the_tiny_cnn(name, options, cnn, rows):
    check_doors(name, options, cnn, *rows)


@pytest.mark.parametrize("name,options", VIT_CASES, ids=[f"{n}{o or ''}" for n, o in VIT_CASES])
def test_eager_equals_traced_on_the_tiny_vit(name, options, vit, rows):
    check_doors(name, options, vit, *rows)


def test_traced_takes_any_number_of_images(cnn, rows):
    images, targets = rows
    method = get_method("occlusion", patch=8, stride=8)
    spec = [tf.TensorSpec((None,) + images.shape[1:], tf.float32), tf.TensorSpec((None,), tf.int32)]
    fn = tf.function(lambda x, t: method.attribute(cnn, x, t), input_signature=spec)
    for n in (1, 3, 5):
        np.testing.assert_allclose(fn(images[:n], targets[:n]).numpy(), method.attribute(cnn, images[:n], targets[:n]),
                                   rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_declares_whether_it_is_exportable(name):
    reason = METHODS[name].cls.not_exportable
    assert isinstance(reason, str)
    assert reason == "" or len(reason.split()) >= 4  # a reason is a sentence, not a flag


def test_smooth_is_exportable_when_its_wrapped_method_is():
    assert get_method("smooth", inner="gradcam").export_refusal() == ""
    assert "xrai" in get_method("smooth", inner="xrai").export_refusal()
    assert "scikit-image" in get_method("smooth", inner="xrai").export_refusal()
