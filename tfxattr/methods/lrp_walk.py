r"""LRP's walk over a Keras model: the plan (how relevance crosses each step of the flattened graph, nested
models included), the forward pass that records every tensor, and the backward pass that carries relevance
from the output to the network input one step at a time. Shared by :mod:`.lrp` and :mod:`.t_attr`.

A linear stage (Conv, Dense, DepthwiseConv, each half of a SeparableConv, a BatchNormalization that directly
follows one folded into it) maps relevance with a rule of :mod:`.lrp_rules`. Other layers (Zennit's choice for
each, which is also Montavon et al.'s):

* elementwise activations, Dropout, Rescaling/Normalization and a BatchNormalization that cannot be folded
  (pre-activation ResNetV2, DenseNet): relevance passed through unchanged;
* Add / Subtract / Average, AveragePooling and GlobalAveragePooling: split in proportion to the contributions
  (``R_k = x_k d<z, s>/dx_k``, ``s = R / z``, 0 where z = 0; LRP-0 on a linear layer without weights: Zennit's
  Norm rule without its stabiliser, so relevance is conserved exactly there);
* MaxPooling, GlobalMaxPooling: winner-take-all (all of an output's relevance goes to its maximum input,
  the gradient of the max);
* Concatenate, Flatten, Reshape, padding, cropping, permutations, slicing: relevance moved with the values
  (the gradient of the index map; a padded position's relevance is dropped);
* a final softmax (fused in the last Dense or its own layer) is removed: LRP explains the logit.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import keras
import tensorflow as tf

from ..models.layers import layer_graph, model_cache

# layer (or Keras operation) class names by how relevance crosses them
PASS = {"Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
        "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "Identity", "Rescaling",
        "Normalization", "BatchNormalization", "ActivityRegularization", "Softmax", "InputLayer"}
PROPORTIONAL = {"Add", "Subtract", "Average", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
                "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D"}
MOVED = {"MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
         "GlobalMaxPooling3D", "Concatenate", "Flatten", "Reshape", "Permute", "ZeroPadding1D", "ZeroPadding2D",
         "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D", "UpSampling3D",
         "RepeatVector", "GetItem"}
CONV = {"Conv1D", "Conv2D", "Conv3D"}
DEPTHWISE = {"DepthwiseConv1D", "DepthwiseConv2D"}
SEPARABLE = {"SeparableConv1D", "SeparableConv2D"}
OUTPUT_SQUASH = ("softmax", "sigmoid")  # a final activation LRP removes: it explains the logit


# -- the plan: the model's steps and how relevance crosses each ------------------------------------------
@dataclass
class _Stage:
    fn: Callable            # fn(x, kernel) -> z without bias (a linear map of x)
    kernel: Callable        # () -> float32 kernel (BatchNormalization folded in when it follows)
    bias: Callable          # () -> float32 bias (0.0 when none)


@dataclass
class _Linear:
    kind: str               # "conv" or "dense"
    stages: List[_Stage]
    activation: Optional[Callable]  # fused activation applied after the stages (None: linear)
    output: tuple           # the tensor key this writes (a folded BatchNormalization's output)


@dataclass
class Plan:
    graph: object
    linear: Dict[int, _Linear] = field(default_factory=dict)   # step index -> linear layer
    folded: set = field(default_factory=set)                   # BatchNormalization steps folded away
    kinds: Dict[int, str] = field(default_factory=dict)        # other step index -> "pass" | "prop" | "moved"
    first: set = field(default_factory=set)                    # linear steps reading (a map of) the input only
    prefix: List[int] = field(default_factory=list)            # the steps before them (bounds run through these)
    start: Optional[int] = None                                # the last step when it ends in a squash to remove


def plan_of(model) -> Plan:
    """How relevance crosses each step of ``model``'s flattened graph (built once per model)."""
    cache = model_cache(model)  # the per-model cache fullgrad and the chains use
    if "lrp_plan" not in cache:
        cache["lrp_plan"] = _build_plan(layer_graph(model))
    return cache["lrp_plan"]


def _build_plan(graph) -> Plan:
    plan = Plan(graph)
    consumers: Dict[tuple, List[int]] = {}
    for i, step in enumerate(graph.steps):
        for k in step.inputs:
            consumers.setdefault(k, []).append(i)
    bounded = {graph.source}
    for i, step in enumerate(graph.steps):
        layer, name = step.layer, type(step.layer).__name__
        if layer is None:
            plan.kinds[i] = "alias"
        elif name in CONV | DEPTHWISE | SEPARABLE or name == "Dense":
            plan.linear[i] = _linear(graph, i, step, consumers, plan)
        elif i in plan.folded:
            continue
        elif name in PASS:
            plan.kinds[i] = "pass"
        elif name in PROPORTIONAL:
            plan.kinds[i] = "prop"
        elif name in MOVED:
            plan.kinds[i] = "moved"
        else:
            known = sorted(CONV | DEPTHWISE | SEPARABLE | PASS | PROPORTIONAL | MOVED | {"Dense"})
            raise ValueError(f"lrp has no rule for layer {step.path!r} of type {name} in model "
                             f"{graph.model_name!r}; it knows {', '.join(known)}")
        if all(k in bounded for k in step.inputs):
            if i in plan.linear:
                plan.first.add(i)
            else:
                plan.prefix.append(i)
                bounded.update(step.outputs)
    last = graph.producer[graph.sink]
    squash = _squash(graph.steps[last].layer)
    if squash and (last in plan.linear or plan.kinds.get(last) == "pass"):
        plan.start = last
    return plan


def _squash(layer) -> bool:
    act = getattr(layer, "activation", None)
    if type(layer).__name__ == "Softmax":
        return True
    return getattr(act, "__name__", None) in OUTPUT_SQUASH


def _linear(graph, i, step, consumers, plan) -> _Linear:
    layer, name = step.layer, type(step.layer).__name__
    if len(step.inputs) != 1 or len(step.outputs) != 1:
        raise ValueError(f"lrp: layer {step.path!r} has several inputs or outputs")
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise ValueError(f"lrp needs channels-last layers; {step.path!r} is {layer.data_format}")
    has_bias = getattr(layer, "use_bias", False) and getattr(layer, "bias", None) is not None
    bias = functools.partial(_weight, layer, "bias") if has_bias else _no_bias
    kernel = functools.partial(_weight, layer, "kernel")
    if name == "Dense":
        stages = [[_dense, kernel, bias]]
    elif name in CONV:
        stages = [[layer.convolution_op, kernel, bias]]
    else:
        conv = dict(strides=layer.strides, padding=layer.padding, dilation_rate=layer.dilation_rate,
                    data_format="channels_last")
        depthwise = functools.partial(_depthwise, conv)
        if name in DEPTHWISE:
            stages = [[depthwise, kernel, bias]]
        else:
            stages = [[depthwise, functools.partial(_weight, layer, "depthwise_kernel"), _no_bias],
                      [_pointwise, functools.partial(_weight, layer, "pointwise_kernel"), bias]]
    activation = getattr(layer, "activation", None)
    if activation is keras.activations.linear or getattr(activation, "__name__", "") == "linear":
        activation = None
    output = step.outputs[0]
    users = consumers.get(output, [])
    if activation is None and len(users) == 1 and output != graph.sink:
        bn_step = graph.steps[users[0]]
        bn = bn_step.layer
        if type(bn).__name__ == "BatchNormalization" and bn.axis in (-1, len(graph.shapes[output]) - 1):
            plan.folded.add(users[0])
            output = bn_step.outputs[0]
            kernel, b = stages[-1][1], stages[-1][2]
            stages[-1][1], stages[-1][2] = _fold(bn, kernel, b, name in DEPTHWISE)
            activation = getattr(bn, "activation", None)  # BatchNormalization has none; kept for symmetry
    return _Linear("dense" if name == "Dense" else "conv", [_Stage(*s) for s in stages], activation, output)


def _weight(layer, attr):
    return tf.cast(tf.convert_to_tensor(getattr(layer, attr)), tf.float32)


def _no_bias():
    return 0.0


def _dense(x, w):
    return tf.tensordot(x, w, 1)


def _depthwise(conv, x, w):
    return keras.ops.depthwise_conv(x, w, **conv)


def _pointwise(x, w):
    return keras.ops.conv(x, w, strides=1, padding="valid", data_format="channels_last")


def _fold(bn, kernel, bias, depthwise):
    """``(kernel, bias)`` of ``bn(linear(x))`` as one linear map (inference statistics)."""
    def scale():
        s = tf.math.rsqrt(tf.cast(bn.moving_variance, tf.float32) + bn.epsilon)
        return s * tf.cast(bn.gamma, tf.float32) if bn.scale else s

    def folded_kernel():
        k = kernel()
        s = scale()
        if depthwise:  # (kh, kw, in, multiplier): output channel = in * multiplier + m
            s = tf.reshape(s, tf.shape(k)[-2:])
        return k * s

    def folded_bias():
        s = scale()
        beta = tf.cast(bn.beta, tf.float32) if bn.center else 0.0
        return (bias() - tf.cast(bn.moving_mean, tf.float32)) * s + beta
    return folded_kernel, folded_bias


# -- the forward and backward walks -----------------------------------------------------------------------
def call_step(step, values, replace=None):
    """The step's output(s) as a flat list, its inputs optionally replaced by ``replace`` (key -> tensor)."""
    local = values if not replace else {**values, **replace}
    args, kwargs = step.fill(local)
    if step.layer is None:
        return [args[0]]
    if isinstance(step.layer, keras.layers.Layer):
        kwargs = {**kwargs, "training": False}
    return [tf.cast(o, tf.float32) for o in keras.tree.flatten(step.layer(*args, **kwargs))]


def _run_linear(lin: _Linear, x):
    """``(stage inputs, pre-activation z, output)`` of a linear layer."""
    inputs = []
    for st in lin.stages:
        inputs.append(x)
        x = st.fn(x, st.kernel()) + st.bias()
    return inputs, x, (x if lin.activation is None else tf.cast(lin.activation(x), tf.float32))


def forward(plan: Plan, source):
    """``(values, linear_inputs, pre)``: every tensor of the walk, each linear layer's stage inputs and its
    pre-activation output, for the network input ``source``."""
    graph = plan.graph
    values = {graph.source: tf.cast(source, tf.float32)}
    linear_inputs, pre = {}, {}
    for i, step in enumerate(graph.steps):
        if i in plan.folded:
            continue
        if i in plan.linear:
            lin = plan.linear[i]
            ins, z, out = _run_linear(lin, values[step.inputs[0]])
            linear_inputs[i], pre[i] = ins, z
            values[lin.output] = out
            continue
        for key, value in zip(step.outputs, call_step(step, values)):
            values[key] = value
    return values, linear_inputs, pre


def backward(plan: Plan, values, linear_inputs, rel, linear_backward):
    """Carry ``rel`` (tensor key -> relevance, the output's set) back to the network input; a linear layer's
    stage ``j`` of step ``i`` maps relevance with ``linear_backward(i, j, stage, x, r)``. Returns the input's."""
    graph = plan.graph
    for i in reversed(range(len(graph.steps))):
        if i in plan.folded:
            continue
        step = graph.steps[i]
        if i in plan.linear:
            lin = plan.linear[i]
            r = rel.pop(lin.output, None)
            if r is None:
                continue
            for j in reversed(range(len(lin.stages))):
                r = linear_backward(i, j, lin.stages[j], linear_inputs[i][j], r)
            _accumulate(rel, step.inputs[0], r)
            continue
        outs = [rel.pop(k, None) for k in step.outputs]
        if all(r is None for r in outs):
            continue
        for key, r in zip(step.inputs, _step_relevance(plan.kinds[i], step, values, outs)):
            _accumulate(rel, key, r)
    return rel.get(graph.source, tf.zeros_like(values[graph.source]))




def _accumulate(rel, key, r):
    if r is not None:
        rel[key] = r if key not in rel else rel[key] + r


def _step_relevance(kind, step, values, outs):
    """The relevance of each input of a non-linear or weightless step."""
    if kind in ("alias", "pass"):
        return [outs[0]]
    ins = [values[k] for k in step.inputs]
    outs = [tf.zeros_like(values[k]) if r is None else r for k, r in zip(step.outputs, outs)]
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        for t in ins:
            tape.watch(t)
        z = call_step(step, values, dict(zip(step.inputs, ins)))
    if kind == "moved":
        grads = tape.gradient(z, ins, output_gradients=outs)
        return grads
    # LRP-0 on a weightless linear map (Zennit's Norm without its stabiliser: 0/0 -> 0)
    grads = tape.gradient(z, ins, output_gradients=[tf.stop_gradient(tf.math.divide_no_nan(r, o))
                                                    for r, o in zip(outs, z)])
    return [None if g is None else t * g for t, g in zip(ins, grads)]

