"""Every use of Keras private attributes, in one place.

Layer splitting has to read a Functional model's graph, which Keras 3 exposes only through private
attributes. They are read here and nowhere else; ``tests/models/test_compat.py`` checks each one on
Functional, Sequential and nested models and fails loudly when a Keras upgrade changes them.
"""
from __future__ import annotations

import keras
import tensorflow as tf

# Keras versions (major.minor) on which every accessor below was checked by tests/models/test_compat.py
VERIFIED_KERAS = ("3.15",)


def keras_version() -> str:
    return ".".join(keras.__version__.split(".")[:2])


def nodes_by_depth(graph) -> dict:
    """Depth -> the call nodes of a Functional graph (``Functional._nodes_by_depth``)."""
    return graph._nodes_by_depth


def has_graph(model) -> bool:
    """True for a Functional model (it carries a node graph); subclassed models have none."""
    return hasattr(model, "_nodes_by_depth")


def sequential_graph(model):
    """The Functional graph Keras builds inside a built Sequential (``Sequential._functional``), or None."""
    return getattr(model, "_functional", None)


def node_tensors(node) -> list:
    """The KerasTensors a call node was given, in call order (``node.arguments.keras_tensors``)."""
    return node.arguments.keras_tensors


def node_call(node, values: dict):
    """``(args, kwargs)`` of a node's call with each of its KerasTensors replaced by ``values[id(tensor)]``."""
    return node.arguments.fill_in(values)


def attention_parts(mha) -> dict:
    """The pieces of a ``keras.layers.MultiHeadAttention`` that its ``call`` uses, to re-run it with the
    attention probabilities exposed: the query/key/value/output ``EinsumDense`` layers, the score scale
    ``1/sqrt(key_dim)``, the score and combine einsum equations and the softmax layer (all private)."""
    if getattr(mha, "_use_gate", False) or getattr(mha, "_sliding_window", None) is not None:
        raise ValueError(f"attention layer {mha.name!r} uses a gate or a sliding window; tfxattr re-runs plain "
                         "softmax attention only")
    return {"query": mha._query_dense, "key": mha._key_dense, "value": mha._value_dense,
            "output": mha._output_dense, "scale": mha._inverse_sqrt_key_dim,
            "scores": mha._dot_product_equation, "combine": mha._combine_equation, "softmax": mha._softmax}


def producer(tensor):
    """``(operation, output position)`` of the layer or op that produced a symbolic KerasTensor
    (``tensor._keras_history``), or None for a tensor without one."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    return history.operation, int(history.tensor_index)


# -- TensorFlow -----------------------------------------------------------------------------------------
def traced_per_model(fn):
    """Mark ``fn``, a ``tf.function`` built for one model, as traced once per model, and return it.

    TensorFlow's frequent-retracing detector counts traces by the Python code of the traced function, so
    the adapter's or a method's function, built anew for each model (its own weights, its own graph),
    looks like one function retraced when several models are explained in a row ("5 out of the last 5
    calls to ... triggered tf.function retracing"). The functions have fixed input signatures, so each
    traces once per model; the private ``_omit_frequent_tracing_warning`` (what TensorFlow reads before
    that warning) turns the warning off for them alone. Other objects pass through unchanged."""
    if hasattr(fn, "_omit_frequent_tracing_warning"):
        fn._omit_frequent_tracing_warning = True
    return fn


def graph_function(fn=None, **kwargs):
    """``tf.function(fn, autograph=False, **kwargs)``: every traced function of the library writes its loops
    and branches as TensorFlow ops (``tf.while_loop``, ``tf.cond``, :mod:`tfxattr.batching`), so AutoGraph's
    source rewriting (it parses and converts every function of ours the trace reaches; never Keras' own) only
    costs time: tracing an evaluation of every method on the demo model took 8.0 s with it, 3.1 s without.
    Usable as a decorator."""
    if fn is None:
        return lambda f: tf.function(f, autograph=False, **kwargs)
    return tf.function(fn, autograph=False, **kwargs)


def autograph(fn):
    """``fn``, a user's Python callable model, converted by AutoGraph as ``tf.function`` would convert it
    (``len(x)``, ``if`` / ``for`` on tensors): the library's own traced functions run without AutoGraph
    (:func:`graph_function`), so the user's code they call is converted here, once. TensorFlow functions
    (a SavedModel's) and objects AutoGraph cannot convert pass through unchanged."""
    if isinstance(fn, tf.types.experimental.PolymorphicFunction):
        return fn
    target = fn if hasattr(fn, "__code__") else fn.__call__  # a function, or a callable object's method
    try:
        return tf.autograph.to_graph(target)
    except Exception:  # noqa: BLE001 - AutoGraph refuses some callables (builtins, C extensions): run them as given
        return fn
