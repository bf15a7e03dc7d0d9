r"""Layer-wise Relevance Propagation for Keras CNNs (Bach et al., PLoS ONE 2015; Montavon et al., "Layer-Wise
Relevance Propagation: An Overview", 2019, Sec. 10.2 rules and Sec. 10.3 choice per layer; composites as in Zennit,
Anders et al. 2021).

The model runs layer by layer through its flattened graph (nested models included); the relevance of the
explained logit ``R = z_c`` at the output is carried back step by step. The rules of one linear stage
(LRP-0, epsilon, gamma, alpha-beta, flat, z^B) and the composites are in :mod:`.lrp_rules`; how relevance
crosses every other layer, and the walk itself, in :mod:`.lrp_walk`.

The relevance of the network's input is mapped back to pixels through the adapter's preprocessing as a
pass-through (``R_pixel = J^T R / J^T 1``: an elementwise affine map, with a channel flip for "caffe"
preprocessing, moves relevance without rescaling it). Attributions are (N, H, W, C).

Presets (``composite=``, Zennit's composites): which rule each layer kind gets. ``rule=`` applies one rule to
every linear layer instead. Each rule is one step of an explicit backward walk; every step is TensorFlow
(local gradient tapes), so the method is traced whole by export and runs in chunks of ``batch_size`` images.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

import tensorflow as tf

from ..batching import as_rows, chunk_map, count, finish, rows
from ..checks import did_you_mean, one_of
from ..models.compat import graph_function
from ..models.layers import input_spec, layer_chain
from ..progress import progress_bar
from .base import Method
from .lrp_rules import COMPOSITES, DEFAULT_GAMMA, LAYER_KINDS, RULES, SINGLE_RULES, STABILISER, linear_rule
from .lrp_walk import backward, call_step, forward, plan_of


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
        fn = chain.function(key, lambda: graph_function(
            lambda x, t: relevance(chain, x, t, self.rules, self.options["epsilon"], self.options["gamma"], (lo, hi)),
            input_signature=[input_spec(chain.stages[0]), tf.TensorSpec([None], tf.int32)]))
        n = rows(x)
        with progress_bar(count(n, evaluator.batch_size) if tf.executing_eagerly() else 0, self.name, progress) as bar:
            (out,) = chunk_map(lambda x, t: (fn(x, t),), [tf.float32], n, evaluator.batch_size, x, t, bar=bar)
        return finish(out)



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


def _logit_objective(objective):
    """The objective read on the logits of a model whose final softmax/sigmoid was removed."""
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
        for key, a, b in zip(step.outputs, call_step(step, lo_vals), call_step(step, hi_vals)):
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

