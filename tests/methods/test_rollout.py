"""The ViT attention methods (tfxattr/methods/rollout.py and the four method files): their rules on
small matrices, a ViT-B/16 run, and localisation on the demo ViT."""
import numpy as np
import pytest
import tensorflow as tf

import tfxattr
from tests.helpers import slow
from tfxattr.methods import METHODS
from tfxattr.methods.rollout import gae, gradient_weighted, rollout

VIT_METHODS = sorted(n for n, s in METHODS.items() if s.cls.architecture == "vit")


def test_rules_on_hand_made_matrices():
    """Identity attention: rollout keeps the class token on itself (zero on the patches); GAE adds
    nothing when the gradient-weighted matrices are zero; the positive part is taken per head."""
    eye = tf.eye(3, batch_shape=[1])
    np.testing.assert_allclose(rollout([eye, eye]).numpy(), [[0.0, 0.0]])
    uniform = tf.fill([1, 3, 3], 1 / 3)
    # norm(U + I) has class-token row (2/3, 1/6, 1/6) / 1 -> patches 1/6 each; twice: (4/9+1/18+1/18 ...)
    once = rollout([uniform]).numpy()
    np.testing.assert_allclose(once, [[1 / 6, 1 / 6]], rtol=1e-6)
    np.testing.assert_allclose(gae([tf.zeros([1, 3, 3])]).numpy(), [[0.0, 0.0]])
    np.testing.assert_allclose(gae([uniform]).numpy(), [[1 / 3, 1 / 3]], rtol=1e-6)
    a = tf.constant([[[[1.0]], [[1.0]]]])        # (1 image, 2 heads, 1, 1)
    g = tf.constant([[[[2.0]], [[-4.0]]]])
    np.testing.assert_allclose(gradient_weighted(a, g).numpy(), [[[1.0]]])  # mean(relu(2), relu(-4))


@pytest.fixture(scope="module")
def vit_b16():
    """ViT-B/16 at 224 (12 blocks of 12 heads, width 768), random weights: keras-hub's configuration."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ViTBackbone(image_shape=(224, 224, 3), patch_size=16, num_layers=12, num_heads=12,
                                            hidden_dim=768, mlp_dim=3072)
    return keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=1000, activation=None)


# one of each method class (the presets are iia_vit with other layers); iia3_vit nests the input and two blocks
VIT_B_RUNS = {"attention_rollout": {}, "gradient_rollout": {}, "gae": {}, "iia3_vit": {"steps": 1}}


@slow("ViT-B/16 at 224 (12 blocks of 12 heads): ~20-40 s; the demo ViT and the tiny ViTs cover the default run")
def test_every_vit_method_runs_on_vit_b16(vit_b16):
    """One image, one step: about half a minute on 2 idle cores (tracing 12 blocks dominates)."""
    assert {METHODS[n].cls for n in VIT_B_RUNS} == {METHODS[n].cls for n in VIT_METHODS}
    image = np.random.default_rng(0).uniform(0, 255, (224, 224, 3)).astype(np.float32)
    for name, options in VIT_B_RUNS.items():
        e = tfxattr.explain(vit_b16, image, name, targets=7, **options)
        assert e.attribution.shape == (224, 224, 1) and np.all(np.isfinite(e.attribution))
        assert np.all(e.attribution >= 0) and np.any(e.attribution > 0), name


LOCALIZATION_IMAGES = 32


@pytest.mark.parametrize("method", ["iia_vit", "gae", "gradient_rollout"])
def test_localises_the_object_on_the_demo_vit(demo_vit, method):
    """Positive mass inside the object mask vs the mask's area, for the true class, on unseen images.

    A map that ignores the object puts a share equal to the mask's area inside it (a coin flip per
    image for "more than the area"): at least 75% of 32 images is P < 0.002 under that null.
    Measured here (seed 7, 32 images): see the README's ViT section.
    """
    from tfxattr.demo import make_demo_data

    data = make_demo_data(LOCALIZATION_IMAGES, seed=7)
    maps = tfxattr.explain(demo_vit, data["images"], method, targets=data["labels"]).map
    positive = np.maximum(maps, 0)
    inside = (positive * data["masks"]).sum((1, 2)) / np.maximum(positive.sum((1, 2)), 1e-12)
    area = data["masks"].mean((1, 2))
    assert np.mean(inside > area) >= 0.75, np.mean(inside > area)
