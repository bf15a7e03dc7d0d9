"""Models for the evaluation runner: a spec (anything a model source recognises by name, e.g. "demo",
a .keras/.h5 file, a SavedModel dir, a Keras application, optionally "name:weights=none|PATH") or a
model object, loaded as a :class:`LoadedModel` with the label its results are stored under."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..checks import known_keys
from ..models import sources
from ..models.build import model_adapter
from ..models.options import TEXT_OPTIONS, ModelOptions
from ..specs import Spec, parse_spec

# what a model spec may say after its name, e.g. "model.keras:input_range=(-1,1),class_names=(cat,dog)": every
# model option that can be written as text (ModelOptions: not preprocess, a function, nor strategy: --devices)
SPEC_OPTIONS = TEXT_OPTIONS
# the spec options left out of the label results are stored under: they never change a number (the weights
# are in it when they are a Keras application's, beside its canonical name)
UNLABELLED = ("weights", "class_names", "batch_size")


@dataclass
class LoadedModel:
    label: str
    adapter: object
    random_weights: bool
    weights: Optional[str]


def check_model(spec: Spec, weights="imagenet"):
    """Fail early, before anything is loaded: the spec's options must be model options with valid values, its
    source must recognise it and accept its weights."""
    known_keys(spec.options, SPEC_OPTIONS, "option", f"model {spec.label}")
    options = ModelOptions(**{"weights": weights, **spec.options})
    sources.check(spec.name, options.weights)


def load_model(model, weights="imagenet", batch_size: int = 32, pixel_range=None, strategy=None, input_range=None,
               class_names=None) -> LoadedModel:
    """A :class:`LoadedModel` from a spec string / Spec, or a model object (keras.Model, ModelAdapter, ...).
    ``pixel_range``: the range of the data's pixels when it is not the model's own; ``input_range``: the
    range the model reads, ``class_names``: its class names; ``strategy``: see :func:`~tfxattr.models.as_model`.
    A spec's own options (any of :data:`SPEC_OPTIONS`) win."""
    options = ModelOptions(weights=weights, batch_size=batch_size, pixel_range=pixel_range, strategy=strategy,
                           input_range=input_range, class_names=class_names)
    if not isinstance(model, (str, Spec, tuple)):
        adapter = model_adapter(model, options)
        return LoadedModel(adapter.name, adapter, adapter.random_weights, adapter.weights)
    spec = parse_spec(model, "model")
    check_model(spec, weights)
    adapter = model_adapter(spec.name, options.replace(**spec.options))
    name, shown = spec.name, {k: v for k, v in spec.options.items() if k not in UNLABELLED}
    if adapter.weights is not None:  # a Keras application: its canonical name, and its weights unless ImageNet's
        name = adapter.name
        shown.update({} if adapter.weights == "imagenet" else {"weights": adapter.weights})
    label = Spec(name, shown).label  # files and directories keep their path: unique in the store
    return LoadedModel(label, adapter, adapter.random_weights, adapter.weights)
