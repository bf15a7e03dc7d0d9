r"""Layer-wise Relevance Propagation for Keras CNNs (Bach et al., PLoS ONE 2015; Montavon et al., "Layer-Wise
Relevance Propagation: An Overview", 2019, Sec. 10.2 rules and Sec. 10.3 choice per layer; composites as in Zennit,
Anders et al. 2021).

The model runs layer by layer through its flattened graph (nested models included); the relevance of the
explained logit ``R = z_c`` at the output is carried back step by step. For a linear stage
``z_j = sum_i x_i w_ij + b_j`` (Conv, Dense, DepthwiseConv, each half of a SeparableConv; a BatchNormalization that
directly follows one is folded into its weights and bias) the rules are, with ``s_j = R_j / stab(z'_j)`` and
``stab(z) = z + eps * sign(z)`` (sign(0) = 1, eps = 1e-6 unless ``epsilon=`` says otherwise)::

    zero          R_i = x_i sum_j w_ij s_j                        z' = z, s_j = 0 where z_j = 0     (LRP-0)
    epsilon       the same with eps = ``epsilon``                                                    (LRP-eps)
    gamma         z'+ = x^+ (w + g w^+) + x^- (w + g w^-) + b + g b^+ for z_j > 0, and
                  z'- = x^+ (w + g w^-) + x^- (w + g w^+) + b + g b^- for z_j < 0        (generalised LRP-gamma)
    alpha_beta    R_i = alpha [x^+ w^+ s^+ + x^- w^- s^+]_i - beta [x^+ w^- s^- + x^- w^+ s^-]_i with
                  z^+ = x^+ w^+ + x^- w^- + b^+,  z^- = x^+ w^- + x^- w^+ + b^-     (alpha1_beta0, alpha2_beta1)
    flat          R_i = sum_j R_j / sum_i' 1 over the receptive field (w = 1, x = 1, no bias)
    box (z^B)     R_i = x_i w_ij s_j - l_i w^+_ij s_j - h_i w^-_ij s_j,  z' = x w - l w^+ - h w^-

``x^+ = max(x, 0)``, ``w^+ = max(w, 0)`` and so on. ``box`` is for the first layer: ``(l, h)`` are the lowest and
highest values its input can take, the adapter's pixel range (constant black and white images) mapped through
the model's preprocessing and every layer before the first linear one (a Rescaling, a Normalization, a padding),
elementwise. Without biases, ``zero``, ``epsilon -> 0`` and ``box`` conserve relevance exactly at each layer;
biases and ``eps`` absorb some.

Other layers (Zennit's choice for each, which is also Montavon et al.'s):

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

The relevance of the network's input is mapped back to pixels through the adapter's preprocessing as a
pass-through (``R_pixel = J^T R / J^T 1``: an elementwise affine map, with a channel flip for "caffe"
preprocessing, moves relevance without rescaling it). Attributions are (N, H, W, C).

Presets (``composite=``, Zennit's composites): which rule each layer kind gets. ``rule=`` applies one rule to
every linear layer instead. Each rule is one step of an explicit backward walk; every step is TensorFlow
(local gradient tapes), so the method is traced whole by export and runs in chunks of ``batch_size`` images.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import keras
import tensorflow as tf

from ..batching import as_rows, chunk_map, count, finish, rows
from ..checks import did_you_mean, one_of
from ..models.layers import input_spec, layer_chain, layer_graph, model_cache
from ..progress import progress_bar
from .base import Method

# Zennit's stabiliser: z + eps * sign(z) keeps every denominator away from zero without changing its sign
STABILISER = 1e-6
# Montavon et al. 2019 (Sec. 10.2.2) and Zennit's Gamma default
DEFAULT_GAMMA = 0.25

RULES = ("zero", "epsilon", "gamma", "alpha1_beta0", "alpha2_beta1", "flat", "box")
ALPHA_BETA = {"alpha1_beta0": (1.0, 0.0), "alpha2_beta1": (2.0, 1.0)}
SINGLE_RULES = ("zero", "epsilon", "gamma", "alpha1_beta0", "alpha2_beta1")  # rule=: one rule for every layer
LAYER_KINDS = ("first", "conv", "dense")
COMPOSITES: Dict[str, Dict[str, str]] = {
    # Zennit's EpsilonPlus, EpsilonPlusFlat, EpsilonGammaBox, EpsilonAlpha2Beta1, EpsilonAlpha2Beta1Flat
    "epsilon_plus": {"first": "alpha1_beta0", "conv": "alpha1_beta0", "dense": "epsilon"},
    "epsilon_plus_flat": {"first": "flat", "conv": "alpha1_beta0", "dense": "epsilon"},
    "epsilon_gamma_box": {"first": "box", "conv": "gamma", "dense": "epsilon"},
    "epsilon_alpha2_beta1": {"first": "alpha2_beta1", "conv": "alpha2_beta1", "dense": "epsilon"},
    "epsilon_alpha2_beta1_flat": {"first": "flat", "conv": "alpha2_beta1", "dense": "epsilon"},
}

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


class LRP(Method):
    """Layer-wise Relevance Propagation (Bach et al. 2015; Montavon et al. 2019) with Zennit-style composites."""
    name = "lrp"
    summary = "LRP (Bach et al. 2015) for Keras CNNs: composites epsilon_gamma_box, epsilon_plus_flat, ... or rule="
    defaults = {"composite": "epsilon_gamma_box", "rule": None, "epsilon": STABILISER, "gamma": DEFAULT_GAMMA}

    def validate(self):
        one_of(self.options["composite"], "composite", tuple(COMPOSITES))
        rule = self.options["rule"]
        if rule is not None:
            if rule not in SINGLE_RULES:
                raise ValueError(f"rule must be one of {SINGLE_RULES} (one rule for every layer; 'flat' and 'box' "
                                 f"are first-layer rules of a composite), got {rule!r}{did_you_mean(rule, RULES)}")
            if "composite" in self.given:
                raise ValueError("give composite= (a rule per layer kind) or rule= (one rule everywhere), not both")
        for key in ("epsilon", "gamma"):
            value = self.options[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{key} must be a number >= 0, got {value!r}")

    @property
    def rules(self) -> Dict[str, str]:
        rule = self.options["rule"]
        return {k: rule for k in LAYER_KINDS} if rule is not None else dict(COMPOSITES[self.options["composite"]])

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        chain = layer_chain(evaluator, [], self.name)
        x, t = as_rows(images, targets)
        lo, hi = (float(v) for v in evaluator.pixel_range)
        key = f"lrp{sorted(self.rules.items())}{self.options['epsilon']}{self.options['gamma']}{(lo, hi)}"
        fn = chain.function(key, lambda: tf.function(
            lambda x, t: relevance(chain, x, t, self.rules, self.options["epsilon"], self.options["gamma"], (lo, hi)),
            input_signature=[input_spec(chain.stages[0]), tf.TensorSpec([None], tf.int32)], autograph=False))
        n = rows(x)
        with progress_bar(count(n, evaluator.batch_size) if tf.executing_eagerly() else 0, self.name, progress) as bar:
            (out,) = chunk_map(lambda x, t: (fn(x, t),), [tf.float32], n, evaluator.batch_size, x, t, bar=bar)
        return finish(out)


# -- the rules of one linear stage ----------------------------------------------------------------------
def stabilise(z, eps=STABILISER):
    """``z + eps * sign(z)`` with sign(0) = 1 (Zennit's ``stabilize``)."""
    return z + eps * tf.where(z >= 0, 1.0, -1.0)


def _pos(t):
    return tf.maximum(t, 0.0)


def _neg(t):
    return tf.minimum(t, 0.0)


def _weighted_vjp(fn, pairs, bias, scale):
    """``z = sum_k fn(x_k, w_k) + bias`` and ``[x_k * d<z, s>/dx_k]`` with ``s = scale(z)``."""
    xs = [x for x, _ in pairs]
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        for x in xs:
            tape.watch(x)
        z = tf.add_n([fn(x, w) for x, w in pairs]) + bias
    s = tf.stop_gradient(scale(z))
    grads = tape.gradient(z, xs, output_gradients=s)
    return [x * (tf.zeros_like(x) if g is None else g) for x, g in zip(xs, grads)]


def linear_rule(rule, fn, x, w, b, r, eps=STABILISER, gamma=DEFAULT_GAMMA, bounds=None):
    """Relevance of the input ``x`` of the linear stage ``z = fn(x, w) + b`` given the relevance ``r`` of ``z``."""
    if rule == "zero":  # exact LRP-0: no stabiliser, 0/0 -> 0 (a unit with z = 0 passes no relevance)
        (out,) = _weighted_vjp(fn, [(x, w)], b, lambda z: tf.math.divide_no_nan(r, z))
        return out
    if rule == "epsilon":
        (out,) = _weighted_vjp(fn, [(x, w)], b, lambda z: r / stabilise(z, eps))
        return out
    xp, xn = _pos(x), _neg(x)
    if rule == "gamma":
        z = fn(x, w) + b
        up, un = w + gamma * _pos(w), w + gamma * _neg(w)
        pos = _weighted_vjp(fn, [(xp, up), (xn, un)], b + gamma * _pos(b),
                            lambda zp: tf.where(z > 0, r / stabilise(zp), 0.0))
        neg = _weighted_vjp(fn, [(xp, un), (xn, up)], b + gamma * _neg(b),
                            lambda zn: tf.where(z < 0, r / stabilise(zn), 0.0))
        return tf.add_n(pos + neg)
    if rule in ALPHA_BETA:
        alpha, beta = ALPHA_BETA[rule]
        wp, wn = _pos(w), _neg(w)
        out = alpha * tf.add_n(_weighted_vjp(fn, [(xp, wp), (xn, wn)], _pos(b), lambda z: r / stabilise(z)))
        if beta:
            out -= beta * tf.add_n(_weighted_vjp(fn, [(xp, wn), (xn, wp)], _neg(b), lambda z: r / stabilise(z)))
        return out
    if rule == "flat":
        ones = tf.ones_like(x)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(ones)
            z = fn(ones, tf.ones_like(w))
        return tape.gradient(z, ones, output_gradients=tf.stop_gradient(r / stabilise(z)))
    if rule == "box":
        low, high = (tf.broadcast_to(v, tf.shape(x)) for v in bounds)
        # z = x w - l w^+ - h w^-: the bounds enter with negated weights, so each term below carries its sign
        return tf.add_n(_weighted_vjp(fn, [(x, w), (low, -_pos(w)), (high, -_neg(w))], 0.0,
                                      lambda z: r / stabilise(z)))
    raise ValueError(f"unknown LRP rule {rule!r}")


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
    cache = model_cache(model)
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
def _call(step, values, replace=None):
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
        for key, value in zip(step.outputs, _call(step, values)):
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


def relevance(chain, x, targets, rules: Dict[str, str], eps=STABILISER, gamma=DEFAULT_GAMMA,
              pixel_range: Tuple[float, float] = (0.0, 255.0)):
    """LRP relevance (N, H, W, C) of pixels ``x`` for int ``targets`` with ``rules`` per layer kind."""
    plan = plan_of(chain.stages[0])
    graph = plan.graph
    values, linear_inputs, pre = forward(plan, chain.preprocess(x) if chain.preprocess is not None else x)
    # the explained logit and its relevance at the output (a final softmax removed)
    objective = chain.objective
    start = values[graph.sink]
    if plan.start is not None:
        start = pre[plan.start] if plan.start in plan.linear else values[graph.steps[plan.start].inputs[0]]
        objective = _logit_objective(objective)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(start)
        f = objective.explained(start, targets)
    rel = {graph.sink: start * tape.gradient(f, start)}
    bounds = _bounds(chain, plan, x, pixel_range) if rules["first"] == "box" and plan.first else None

    def linear_backward(i, j, stage, inp, r):
        rule = rules["first"] if i in plan.first and j == 0 else rules[plan.linear[i].kind]
        return linear_rule(rule, stage.fn, inp, stage.kernel(), stage.bias(), r, eps, gamma,
                           bounds.get(i) if bounds and rule == "box" else None)
    return _to_pixels(chain, x, backward(plan, values, linear_inputs, rel, linear_backward))


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
        z = _call(step, values, dict(zip(step.inputs, ins)))
    if kind == "moved":
        grads = tape.gradient(z, ins, output_gradients=outs)
        return grads
    # LRP-0 on a weightless linear map (Zennit's Norm without its stabiliser: 0/0 -> 0)
    grads = tape.gradient(z, ins, output_gradients=[tf.stop_gradient(tf.math.divide_no_nan(r, o))
                                                    for r, o in zip(outs, z)])
    return [None if g is None else t * g for t, g in zip(ins, grads)]


def _logit_objective(objective):
    """The objective read on the logits of a model whose final softmax/sigmoid was removed."""
    import dataclasses

    changes = {"output": "logit"}
    for flag in ("ends_in_softmax", "ends_in_sigmoid"):
        if hasattr(objective, flag):
            changes[flag] = False
    return dataclasses.replace(objective, **changes)


def _bounds(chain, plan, x, pixel_range):
    """``{first linear step: (low, high)}``: the pixel range mapped through the preprocessing and the
    steps before each first linear layer (elementwise min/max of a black and a white image)."""
    graph = plan.graph
    shape = tf.concat([[1], tf.shape(x)[1:]], 0)
    ends = []
    for v in pixel_range:
        img = tf.fill(shape, tf.constant(v, tf.float32))
        ends.append(chain.preprocess(img) if chain.preprocess is not None else img)
    lo_vals = {graph.source: tf.cast(ends[0], tf.float32)}
    hi_vals = {graph.source: tf.cast(ends[1], tf.float32)}
    for i in plan.prefix:
        step = graph.steps[i]
        for key, a, b in zip(step.outputs, _call(step, lo_vals), _call(step, hi_vals)):
            lo_vals[key], hi_vals[key] = tf.minimum(a, b), tf.maximum(a, b)
    out = {}
    for i in plan.first:
        key = graph.steps[i].inputs[0]
        out[i] = (lo_vals[key], hi_vals[key])
    return out


def _to_pixels(chain, x, r_net):
    """Relevance at the network's input moved back to pixels through the preprocessing (pass-through)."""
    if chain.preprocess is None:
        return r_net
    with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
        tape.watch(x)
        y = tf.cast(chain.preprocess(x), tf.float32)
    moved = tape.gradient(y, x, output_gradients=r_net)
    unit = tape.gradient(y, x, output_gradients=tf.ones_like(y))
    del tape
    return tf.math.divide_no_nan(moved, unit)
