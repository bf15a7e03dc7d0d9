"""Split Keras models at named layers into chained sub-models (stem -> middle -> head).

A model is flattened into its primitive layer calls: nested Functional and Sequential models
(a Keras application inside a Sequential with preprocessing layers in front, say) are expanded in
place, so an inner layer is addressed as ``"resnet50v2/post_relu"`` or by its plain name, searched
recursively. A layer is a *valid split point* when every path from the model input to its output
passes through that layer's output (a residual/dense/parallel branch must not bypass it); then
the layers after it depend on nothing else and the model is ``head(stem(x))``.

Sub-models are rebuilt from fresh ``keras.Input`` tensors by calling the original layer objects
again (weights are shared), which avoids the "Graph disconnected" and "layer has never been called"
errors of ``keras.Model(model.input, model.get_layer(...).get_layer(...).output)`` on nested models.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import keras

from .. import compat


@dataclass
class _Step:
    layer: object            # the primitive layer/operation called, or None for an alias (identity)
    path: str                # "outer/inner" name of the call
    inputs: Tuple            # keys of the tensors it reads
    outputs: Tuple           # keys of the tensors it writes
    fill: Callable           # values dict -> (args, kwargs) of the call


class LayerGraph:
    """``model`` flattened into primitive layer calls, with its valid split points.

    Tensor keys are ``(expansion, id(KerasTensor))``; each expansion of a nested model gets its own
    number, so a nested model called twice stays correct (its layer names become ambiguous).
    """

    def __init__(self, model):
        graph = _functional_graph(model)
        if len(graph.inputs) != 1 or len(graph.outputs) != 1:
            raise ValueError(f"model {model.name!r} has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
                             "layer splitting needs a model with one image input and one output")
        self.model_name = model.name
        self.steps: List[_Step] = []
        self.producer: Dict[tuple, int] = {}
        self.shapes: Dict[tuple, tuple] = {}
        self.dtypes: Dict[tuple, str] = {}
        self.names: Dict[str, List[tuple]] = {}
        self.layers: Dict[str, object] = {}
        self.nested: Dict[str, str] = {}  # path of each expanded nested model -> its model name
        self._count = 0
        self.source = (0, id(graph.inputs[0]))
        self._record_tensor(self.source, graph.inputs[0])
        self.sink = self._expand(graph, [self.source], prefix="", nested=False)[0]
        self._find_split_points()
        self._splits: Dict[tuple, list] = {}

    # -- flattening ----------------------------------------------------------------------
    def _record_tensor(self, key, tensor):
        self.shapes[key] = tuple(tensor.shape)
        self.dtypes[key] = tensor.dtype

    def _add(self, step: _Step):
        for k in step.outputs:
            if k in self.producer:
                raise ValueError(f"model {self.model_name!r}: tensor written twice at {step.path!r}")
            self.producer[k] = len(self.steps)
        self.steps.append(step)

    def _expand(self, graph, in_keys, prefix, nested):
        """Append the calls of Functional ``graph`` fed by ``in_keys``; return its output keys."""
        inst = 0
        if nested:  # its inputs alias the outer tensors fed to it
            self._count += 1
            inst = self._count
            for outer, t in zip(in_keys, graph.inputs):
                key = (inst, id(t))
                self._record_tensor(key, t)
                self._add(_Step(None, prefix + "<input>", (outer,), (key,), _alias(outer)))
        by_depth = compat.nodes_by_depth(graph)
        for depth in sorted(by_depth, reverse=True):
            for node in by_depth[depth]:
                if node.is_input or node.operation is None:
                    continue
                op = node.operation
                path = prefix + op.name
                ins = tuple((inst, id(t)) for t in node.input_tensors)
                outs = tuple((inst, id(t)) for t in node.outputs)
                for key, t in zip(outs, node.outputs):
                    self._record_tensor(key, t)
                self.layers.setdefault(path, op)
                sub = _nested_graph(op)
                if sub is None:
                    self._add(_Step(op, path, ins, outs, _node_fill(node, inst)))
                else:
                    self.nested[path] = op.name
                    inner_outs = self._expand(sub, list(ins), path + "/", nested=True)
                    for src, dst in zip(inner_outs, outs):
                        self._add(_Step(None, path, (src,), (dst,), _alias(src)))
                if len(outs) == 1:
                    self.names.setdefault(path, []).append(outs[0])
        return [(inst, id(t)) for t in graph.outputs]

    # -- split points -------------------------------------------------------------------------
    def _find_split_points(self):
        """Dominators of the output: sweep the topological order for edges that jump over a tensor."""
        order = [self.source] + [k for s in self.steps for k in s.outputs]
        pos = {k: i for i, k in enumerate(order)}
        edges = [(i, o) for s in self.steps for i in s.inputs for o in s.outputs]
        forward = _reach(self.source, edges)
        backward = _reach(self.sink, [(o, i) for i, o in edges])
        relevant = forward & backward
        if self.sink not in forward:
            raise ValueError(f"model {self.model_name!r}: the output is not connected to the input")
        jump = [0] * (len(order) + 1)
        for i, o in edges:
            if i in relevant and o in relevant:
                jump[pos[i] + 1] = max(jump[pos[i] + 1], pos[o])
        reach_beyond = 0
        self.position = pos
        self.dominators = set()
        for p, key in enumerate(order):
            reach_beyond = max(reach_beyond, jump[p])
            if key in relevant and reach_beyond <= p:
                self.dominators.add(key)

    def valid_names(self, ndim: Optional[int] = None) -> List[str]:
        out = [(self.position[keys[0]], path) for path, keys in self.names.items()
               if len(keys) == 1 and keys[0] in self.dominators and keys[0] != self.source
               and (ndim is None or len(self.shapes[keys[0]]) == ndim)]
        return [path for _, path in sorted(out)]

    # -- names ----------------------------------------------------------------------------
    def resolve(self, name: str, ndim: Optional[int] = None) -> str:
        """The full path of layer ``name`` (a path "outer/inner" or a plain name searched recursively); an
        unknown name's error lists the valid split layers (those with ``ndim``-D outputs, when given)."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"layer names must be non-empty strings, got {name!r}")
        if name in self.layers:
            return name
        top = self.model_name + "/"
        if name.startswith(top) and name[len(top):] in self.layers:
            return name[len(top):]
        matches = [p for p in self.layers if p.rsplit("/", 1)[-1] == name] if "/" not in name else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ValueError(f"layer name {name!r} is ambiguous in model {self.model_name!r}: it matches "
                             f"{matches}; pass the full path")
        close = difflib.get_close_matches(name, list(self.layers), n=5)
        hint = f" Did you mean {close}?" if close else ""
        raise ValueError(f"no layer {name!r} in model {self.model_name!r} (nested layers: 'outer/inner' or the "
                         f"plain inner name).{hint} {valid_list(self.valid_names(ndim), ndim=ndim)}")

    def split_key(self, name: str) -> tuple:
        """The tensor key of a valid split layer; a clear ValueError otherwise."""
        path = self.resolve(name)
        keys = self.names.get(path, [])
        if len(keys) == 1 and keys[0] in self.dominators:
            return keys[0]
        if not keys:
            why = "it has several outputs"
        elif len(keys) > 1:
            why = f"it is called {len(keys)} times"
        else:
            why = "a path from the input to the output bypasses it (a residual, dense or parallel branch)"
        raise ValueError(f"layer {name!r} is not a valid split point of model {self.model_name!r}: {why}. "
                         f"{valid_list(self.valid_names())}")

    # -- sub-models ------------------------------------------------------------------------
    def split(self, names: Sequence[str], input_shape=None) -> list:
        keys = [self.split_key(n) for n in names]
        if len(set(keys)) != len(keys):
            raise ValueError(f"layers {list(names)} name the same split point twice")
        if any(self.position[a] >= self.position[b] for a, b in zip(keys, keys[1:])):
            raise ValueError(f"layers {list(names)} must be ordered from input to output")
        shape = None if input_shape is None else tuple(input_shape)
        cache_key = (tuple(keys), shape)
        if cache_key not in self._splits:
            bounds = [self.source] + keys + [self.sink]
            labels = ["input"] + [self.resolve(n) for n in names] + ["output"]
            models = []
            for i in range(len(bounds) - 1):
                start_shape = self.shapes[bounds[i]][1:] if shape is None else shape
                sub = self._submodel(bounds[i], bounds[i + 1], f"{self.model_name}__{labels[i]}__{labels[i + 1]}",
                                     start_shape)
                models.append(sub)
                if shape is not None:
                    shape = tuple(sub.outputs[0].shape[1:])
            self._splits[cache_key] = models
        return list(self._splits[cache_key])

    def _submodel(self, start, end, name, start_shape):
        needed, stack, seen = set(), [end], {end}
        while stack:
            key = stack.pop()
            if key == start:
                continue
            if key not in self.producer:
                raise ValueError(f"model {self.model_name!r}: {name} needs a tensor outside the split")
            idx = self.producer[key]
            needed.add(idx)
            for k in self.steps[idx].inputs:
                if k not in seen:
                    seen.add(k)
                    stack.append(k)
        inp = keras.Input(shape=start_shape, dtype=self.dtypes[start])
        values = {start: inp}
        for idx in sorted(needed):
            step = self.steps[idx]
            args, kwargs = step.fill(values)
            out = args[0] if step.layer is None else step.layer(*args, **kwargs)
            for key, value in zip(step.outputs, keras.tree.flatten(out)):
                values[key] = value
        out = values[end]
        if out is inp:
            out = keras.layers.Identity()(inp)
        return keras.Model(inp, out, name=_safe_name(name))


def _alias(src):
    return lambda values: ((values[src],), {})


def _node_fill(node, inst):
    tensors = compat.node_tensors(node)

    def fill(values):
        local = {id(t): values[(inst, id(t))] for t in tensors}
        return compat.node_call(node, local)
    return fill


def _nested_graph(op):
    """The Functional graph of a nested Functional/Sequential model, or None for a primitive layer."""
    if isinstance(op, keras.Sequential):
        graph = compat.sequential_graph(op)
        if graph is None:
            raise ValueError(f"nested Sequential {op.name!r} is not built; give it a keras.Input first")
        return graph
    if isinstance(op, keras.Model) and compat.has_graph(op):
        return op
    return None


def _functional_graph(model):
    if not isinstance(model, keras.Model):
        raise TypeError(f"layer methods need a keras.Model, got {type(model).__name__}")
    graph = _nested_graph(model)
    if graph is None:
        raise TypeError(f"model {model.name!r} is a subclassed keras.Model; layer splitting needs a Functional or "
                        "Sequential model (subclassed models have no layer graph)")
    return graph


def _reach(start, edges):
    nxt: Dict[tuple, list] = {}
    for a, b in edges:
        nxt.setdefault(a, []).append(b)
    seen, stack = {start}, [start]
    while stack:
        for b in nxt.get(stack.pop(), ()):
            if b not in seen:
                seen.add(b)
                stack.append(b)
    return seen


def valid_list(valid, limit=40, ndim=None) -> str:
    """"Valid split layers: [...]" for an error message (the last ``limit`` of a long list)."""
    what = "Valid split layers" if ndim is None else f"Valid {ndim}-D split layers"
    if len(valid) <= limit:
        return f"{what}: {valid}"
    return (f"{what} (the last {limit} of {len(valid)}; tfxattr.models.layers.valid_split_layers(model) "
            f"lists all): {valid[-limit:]}")


def _safe_name(name):
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in name)


# -- public API ---------------------------------------------------------------------------------
_CACHE_ATTR = "_tfxattr_layers"  # per-model cache on the model object: it dies with the model


def model_cache(model) -> dict:
    """The dict of what tfxattr keeps per model object (graph, layer chains, ...): it dies with the model."""
    cache = getattr(model, _CACHE_ATTR, None)
    if cache is None:
        cache = {}
        try:
            object.__setattr__(model, _CACHE_ATTR, cache)  # bypasses Keras' attribute tracking
        except (AttributeError, TypeError):  # pragma: no cover - objects without a __dict__: no cache
            pass
    return cache


def layer_graph(model) -> LayerGraph:
    """The flattened graph of ``model`` (built once per model object)."""
    cache = model_cache(model)
    if "graph" not in cache:
        cache["graph"] = LayerGraph(model)
    return cache["graph"]


def split_model(model, layers, input_shape=None):
    """Cut ``model`` at ``layers`` (valid split points, ordered from input to output).

    ``split_model(model, "post_relu") -> (stem, head)``; a list of k names gives k+1 sub-models
    ``[stem, middle..., head]`` with ``model(x) == head(...middle(stem(x)))``. Sub-models share the
    model's weights. Names: ``"outer/inner"`` paths or plain names searched in nested models.
    ``input_shape`` (no batch axis) rebuilds the chain for another input size, e.g. ``(None, None, 3)``
    to run the stem on a 2x2 grid of images and the head on slices of its feature map (DiPart).
    """
    if isinstance(layers, str):
        return tuple(layer_graph(model).split([layers], input_shape))
    layers = list(layers)
    if not layers:
        raise ValueError("layers must name at least one split layer")
    return layer_graph(model).split(layers, input_shape)


def valid_split_layers(model, ndim: Optional[int] = None) -> List[str]:
    """Names (paths) of the layers where ``model`` can be split, input to output.

    ``ndim=4`` keeps only layers with (N, H, W, C) outputs (activation maps).
    """
    return layer_graph(model).valid_names(ndim)


def find_layer(model, name: str):
    """The layer (or nested model) called ``name``: a path like "resnet50v2/post_relu" or a plain name."""
    graph = layer_graph(model)
    return graph.layers[graph.resolve(name)]


# elementwise affine maps of the pixels that models carry as their first layers
PREPROCESSING_LAYERS = ("Rescaling", "Normalization")


def leading_preprocessing(model) -> Optional[str]:
    """The path of the last of the model's leading preprocessing layers (``Rescaling``,
    ``Normalization``) when the model can be split there, else None: after it starts the network."""
    try:
        graph = layer_graph(model)
    except (TypeError, ValueError):  # subclassed or multi-output models: no layer graph to split
        return None
    last = None
    for step in graph.steps:
        if step.layer is None:  # the input alias of a nested model
            continue
        if type(step.layer).__name__ not in PREPROCESSING_LAYERS:
            break
        last = step
    if last is None or len(last.outputs) != 1 or last.outputs[0] not in graph.dominators:
        return None
    return last.path
