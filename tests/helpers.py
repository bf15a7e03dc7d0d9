"""What tests share besides fixtures: the small models they build and the ``slow()`` mark. Imported as
``from tests.helpers import ...`` (tests/ is a package; conftest.py keeps only the fixtures)."""
import os

import pytest


def slow(reason):
    """Skip unless TFXATTR_SLOW_TESTS is set: end-to-end runs of big models, minutes each on a 2-core CPU
    (run once before a release: ``TFXATTR_SLOW_TESTS=1 python -m pytest -q tests -k <name>``)."""
    return pytest.mark.skipif(not os.environ.get("TFXATTR_SLOW_TESTS"),
                              reason=f"{reason}; run with TFXATTR_SLOW_TESTS=1")


def build_tiny_cnn(size=16, classes=5, seed=0):
    """A small functional CNN with smooth activations (no zero-gradient plateaus), pixels in [0, 255]."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 3))
    h = keras.layers.Rescaling(1 / 255.0)(inp)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="tanh", name="conv1")(h)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="tanh", name="conv2")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    out = keras.layers.Dense(classes, name="logits")(h)
    return keras.Model(inp, out, name="tiny_cnn")


#: The input side the default suite builds the Keras applications at (TFXATTR_SLOW_TESTS=1 adds their native
#: 224 / 299): the same graph (layers, names, blocks, split points) at 1/12 of the pixels (1/5 at 299); the last block
#: is 2x2 instead of 7x7 (4x4 instead of 10x10 for Xception) and the penultimate block is still the larger one.
SMALL_APP_SIDE = {224: 64, 299: 128}


def build_app(name, native=False, seed=None):
    """Keras application ``name`` with random weights and logits: ``keras_apps.build`` at its native size,
    or (the default) the same constructor at the small side of ``SMALL_APP_SIDE``."""
    import keras

    import keras_apps
    from keras_apps import registry

    if seed is not None:
        keras.utils.set_random_seed(seed)
    if native:
        return keras_apps.build(name, weights=None)
    spec = keras_apps.get(name)
    side = SMALL_APP_SIDE[spec.input_size[0]]
    model = spec.constructor(include_top=True, weights=None, classes=1000, classifier_activation=None,
                             input_shape=(side, side, 3))
    registry._stable_names(spec, model)  # as keras_apps.build does (Xception's Add layers)
    return model


def app_sizes(reason="the eleven Keras applications at native size (224 / 299)"):
    """Parameters ``native`` of a test over applications: False (small, the default run) and True (slow)."""
    return [pytest.param(False, id="small"), pytest.param(True, id="native", marks=slow(reason))]


def build_tiny_vit(size=16, patch=4, classes=5, seed=0, with_head=False):
    """A tiny keras-hub ViT (2 blocks of 2 heads, width 8): a ``ViTImageClassifier``, or with
    ``with_head`` a Functional model Rescaling -> ``ViTBackbone`` -> class token -> Dense."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.ViTBackbone(image_shape=(size, size, 3), patch_size=patch, num_layers=2, num_heads=2,
                                            hidden_dim=8, mlp_dim=16)
    if not with_head:
        return keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=classes, activation=None)
    inp = keras.Input((size, size, 3))
    tokens = backbone(keras.layers.Rescaling(1 / 255.0)(inp))
    return keras.Model(inp, keras.layers.Dense(classes, name="logits")(tokens[:, 0]), name="tiny_vit_head")


def build_chain_cnn(convs=((6, "tanh"), (8, "relu")), size=16, classes=4, seed=0):
    """A chain CNN for layer methods: ``Rescaling`` ("scale"), then per ``(filters, activation)`` of ``convs`` a 3x3
    convolution ``c1``, ``c2``, ... with a 2x2 average pooling ``p1``, ``p2``, ... between them (falling
    resolution), global average pooling and a dense ``logits`` layer."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 3))
    h = keras.layers.Rescaling(1 / 255.0, name="scale")(inp)
    for i, (filters, activation) in enumerate(convs, 1):
        if i > 1:
            h = keras.layers.AveragePooling2D(2, name=f"p{i - 1}")(h)
        h = keras.layers.Conv2D(filters, 3, padding="same", activation=activation, name=f"c{i}")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(inp, keras.layers.Dense(classes, name="logits")(h), name="chain")
