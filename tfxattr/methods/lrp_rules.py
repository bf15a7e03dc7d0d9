r"""LRP's rules for one linear stage and Zennit's composites (which rule each layer kind gets); the walk that
applies them layer by layer is :mod:`.lrp_walk`, the method :mod:`.lrp`.

For a linear stage ``z_j = sum_i x_i w_ij + b_j`` (Conv, Dense, DepthwiseConv, each half of a SeparableConv; a
BatchNormalization that directly follows one is folded into its weights and bias) the rules are, with
``s_j = R_j / stab(z'_j)`` and ``stab(z) = z + eps * sign(z)`` (sign(0) = 1, eps = 1e-6 unless ``epsilon=`` says
otherwise; Montavon et al. 2019, Sec. 10.2)::

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
"""
from __future__ import annotations

from typing import Dict

import tensorflow as tf

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

