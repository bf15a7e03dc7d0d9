"""The eleven Keras ImageNet applications by name: specs, builders and offline class names.

>>> spec = keras_apps.get("ResNet50V2")   # AppSpec: input_size, preprocess, last_block, ...
>>> model = keras_apps.build("resnet50v2")  # logits; raises WeightsUnavailableError offline
"""
from keras_apps.imagenet import class_names, decode_predictions, lemmas, wnids
from keras_apps.registry import (
    DOWNLOAD_TIMEOUT,
    NAMES,
    SPECS,
    AppSpec,
    WeightsUnavailableError,
    build,
    fetch_weights,
    get,
    keras_cache_dir,
)


def describe() -> str:
    """One line per application."""
    return "\n".join(SPECS[n].describe() for n in NAMES)


__all__ = [
    "NAMES", "SPECS", "AppSpec", "WeightsUnavailableError", "DOWNLOAD_TIMEOUT", "get", "build",
    "fetch_weights", "keras_cache_dir", "class_names", "wnids", "lemmas", "decode_predictions",
    "describe",
]
