"""The small demo classifier shipped with tfxattr, and matching synthetic data.

The model (``assets/demo_model.keras``) is a 64x64 CNN trained by
``scripts/train_demo_model.py`` on :func:`tfxattr.synthetic.make_shapes`
images.  It takes float pixels in [0, 255] and returns *logits* (no softmax)
over :data:`DEMO_CLASS_NAMES`; its last feature map is the layer
``"last_conv"`` (for GradCAM-style methods).
"""

from __future__ import annotations

import os

from .synthetic import CLASS_NAMES, make_shapes

__all__ = [
    "DEMO_CLASS_NAMES",
    "DEMO_IMAGE_SIZE",
    "DEMO_LAST_CONV",
    "DEMO_MODEL_NAMES",
    "demo_image_path",
    "demo_mask_path",
    "load_demo_model",
    "load_demo_vit",
    "make_demo_data",
]

#: Class names of the demo model's outputs, indexed by logit.
DEMO_CLASS_NAMES = CLASS_NAMES
#: Height and width of the demo model's input images.
DEMO_IMAGE_SIZE = 64
#: Name of the demo model's last convolutional (4-D feature map) layer.
DEMO_LAST_CONV = "last_conv"
#: The Keras names of the demo models (saved in their .keras files): a model with one of these names and
#: one output per class of :data:`DEMO_CLASS_NAMES` is named by them.
DEMO_MODEL_NAMES = ("tfxattr_demo_cnn", "tfxattr_demo_vit")

_ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
_HINT = "it is created by running `python scripts/{}` from the repository root"


def _asset(name, script="train_demo_model.py"):
    path = os.path.join(_ASSETS, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"demo asset {path!r} is missing; {_HINT.format(script)}")
    return path


def demo_model_path() -> str:
    """Path of the shipped ``demo_model.keras`` file."""
    return _asset("demo_model.keras")


def demo_image_path() -> str:
    """Path of the shipped 64x64 RGB demo image (PNG)."""
    return _asset("demo_image.png")


def demo_mask_path() -> str:
    """Path of the demo image's object mask (PNG, 0 = background, 255 = object)."""
    return _asset("demo_image_mask.png")


def load_demo_model():
    """Load the shipped demo classifier (``keras.Model``: [0, 255] pixels -> logits; ``model.class_names``
    is :data:`DEMO_CLASS_NAMES`)."""
    import keras

    return _named(keras.models.load_model(demo_model_path(), compile=False))


def _named(model):
    """``model`` carrying :data:`DEMO_CLASS_NAMES` as ``model.class_names`` (set past Keras' attribute
    tracking: a plain list, not a tracked structure)."""
    object.__setattr__(model, "class_names", list(DEMO_CLASS_NAMES))
    return model


def demo_vit_path() -> str:
    """Path of the shipped ``demo_vit.keras`` file."""
    return _asset("demo_vit.keras", "train_demo_vit.py")


def load_demo_vit():
    """Load the shipped demo Vision Transformer (``keras.Model``: [0, 255] pixels -> logits over
    :data:`DEMO_CLASS_NAMES`, its ``class_names``): ``Rescaling(1/255)``, two stride-2 convolutions, then a keras-hub
    ``ViTImageClassifier`` (an 8x8 grid of tokens, one per 8x8 pixel cell, 4 blocks of 4 heads),
    trained by ``scripts/train_demo_vit.py``."""
    import warnings

    import keras
    import keras_hub  # noqa: F401 - registers the keras-hub classes the file names

    with warnings.catch_warnings():  # keras-hub's classifier overrides compile(); the file holds no compile state
        warnings.filterwarnings("ignore", message=r"`compile\(\)` was not called")
        return _named(keras.models.load_model(demo_vit_path(), compile=False))


def make_demo_data(n, seed=1):
    """``make_shapes(n, size=64, seed=seed)``: images, labels and masks for the demo model.

    The demo model was trained and validated on other seeds (12345, 54321),
    so any small seed gives unseen images.
    """
    return make_shapes(n, size=DEMO_IMAGE_SIZE, seed=seed)
