"""Running a model split at layers for a layer method: :class:`LayerChain` (pixels -> stages -> the
explained scalar), cached per model and per evaluator (:func:`layer_chain`)."""
from __future__ import annotations

import copy
import functools
from typing import Callable, Dict, Sequence

import tensorflow as tf

from .. import compat
from ..devices import run_split
from ..objective import Objective
from .graph import model_cache, split_model


class LayerChain:
    """Pixels -> ``preprocess`` -> ``stages[0]`` -> ... -> ``stages[-1]`` -> the explained scalar.

    ``stages`` are the sub-models of ``split_model(model, names)`` (the whole model when ``names`` is
    empty); the last stage's output is turned into ``f_c`` by the same :class:`Objective` as the adapter's.
    With a ``strategy`` (the evaluator's, :func:`layer_chain`), each call of a built function is split
    across its replicas (:func:`~tfxattr.models.devices.run_split`).
    """

    strategy = None

    def __init__(self, model, names: Sequence[str], preprocess=None, objective: Objective = Objective()):
        self.names = list(names)
        self.stages = list(split_model(model, self.names)) if self.names else [model]
        self.preprocess = preprocess
        self.objective = objective
        self.functions: Dict[str, Callable] = {}  # tf.functions built by the methods, traced once

    def stage(self, i: int, x):
        if i == 0 and self.preprocess is not None:
            x = self.preprocess(x)
        return tf.cast(self.stages[i](x, training=False), tf.float32)  # float32 between stages in any precision

    def explained(self, h, targets):
        """``f_c`` of the last stage's input ``h`` for int ``targets`` (N,)."""
        return self.objective.explained(self.stage(len(self.stages) - 1, h), targets)

    def function(self, key: str, build: Callable) -> Callable:
        """The function ``build()`` made for this chain under ``key``, built once (a tf.function traces once
        per model: :func:`~tfxattr.models.compat.traced_per_model`)."""
        if key not in self.functions:
            self.functions[key] = compat.traced_per_model(build())
        fn = self.functions[key]
        return fn if self.strategy is None else functools.partial(run_split, self.strategy, fn)

    def with_strategy(self, strategy) -> "LayerChain":
        """A view running the same traced functions split across ``strategy``'s replicas."""
        if strategy is self.strategy:
            return self
        twin = copy.copy(self)
        twin.strategy = strategy
        return twin


def keras_model_of(evaluator, method: str):
    """The keras.Model behind ``evaluator`` (a :class:`~tfxattr.models.contracts.KerasEvaluator`);
    TypeError when there is none."""
    model = getattr(evaluator, "keras_model", None)
    if model is None:
        raise TypeError(f"method {method!r} splits the model at named layers and needs a Keras model "
                        f"(Functional or Sequential); {getattr(evaluator, 'name', evaluator)!r} is a SavedModel, a "
                        "plain callable or a PAIR call_model_function. Load it as a keras.Model, or use a gradient "
                        "method such as 'ig'.")
    return model


def layer_chain(evaluator, names: Sequence[str], method: str) -> LayerChain:
    """The (cached) :class:`LayerChain` of ``evaluator``'s Keras model cut at ``names`` (full paths)."""
    model = keras_model_of(evaluator, method)
    key = (tuple(names), evaluator.preprocess, evaluator.objective)
    per_model = model_cache(model).setdefault("chains", {})
    if key not in per_model:
        per_model[key] = LayerChain(model, names, evaluator.preprocess, evaluator.objective)
    return per_model[key].with_strategy(getattr(evaluator, "strategy", None))


def input_spec(model) -> tf.TensorSpec:
    """The float32 TensorSpec of ``model``'s (one) input with a free batch size: a traced stage's signature."""
    return tf.TensorSpec([None] + list(model.inputs[0].shape[1:]), tf.float32)
