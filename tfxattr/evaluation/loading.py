"""Models for the evaluation runner: a spec (anything a model source recognises by name, e.g. "demo",
a .keras/.h5 file, a SavedModel dir, a Keras application, optionally "name:weights=none|PATH") or a
model object, loaded as a :class:`LoadedModel` with the label its results are stored under."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..checks import known_keys
from ..models import as_model, sources
from .specs import Spec, parse_spec

# what a model spec may say after its name, e.g. "model.keras:input_range=(-1,1),class_names=(cat,dog)"
SPEC_OPTIONS = ("weights", "input_range", "class_names")


@dataclass
class LoadedModel:
    label: str
    adapter: object
    random_weights: bool
    weights: Optional[str]


def check_model(spec: Spec, weights="imagenet"):
    """Fail early, before anything is loaded: the spec's source must recognise it and accept its weights."""
    known_keys(spec.options, SPEC_OPTIONS, "option", f"model {spec.label}")
    sources.check(spec.name, spec.options.get("weights", weights))


def load_model(model, weights="imagenet", batch_size: int = 32, pixel_range=None, strategy=None, input_range=None,
               class_names=None) -> LoadedModel:
    """A :class:`LoadedModel` from a spec string / Spec, or a model object (keras.Model, ModelAdapter, ...).
    ``pixel_range``: the range of the data's pixels when it is not the model's own; ``input_range``: the
    range the model reads, ``class_names``: its class names (a spec's own options win); ``strategy``: see
    :func:`~tfxattr.models.as_model`."""
    if not isinstance(model, (str, Spec, tuple)):
        adapter = as_model(model, batch_size=batch_size, pixel_range=pixel_range, strategy=strategy,
                           input_range=input_range, class_names=class_names)
        return LoadedModel(adapter.name, adapter, adapter.random_weights, adapter.weights)
    spec = parse_spec(model, "model")
    check_model(spec, weights)
    adapter = as_model(spec.name, batch_size=batch_size, weights=spec.options.get("weights", weights),
                       pixel_range=pixel_range, strategy=strategy,
                       input_range=spec.options.get("input_range", input_range),
                       class_names=spec.options.get("class_names", class_names))
    label = spec.name  # files and directories keep their path: unique in the store
    if adapter.weights is not None:  # a Keras application: its canonical name, and its weights unless ImageNet's
        label = adapter.name if adapter.weights == "imagenet" else f"{adapter.name}:weights={adapter.weights}"
    return LoadedModel(label, adapter, adapter.random_weights, adapter.weights)
