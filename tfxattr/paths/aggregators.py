"""Aggregators: how gradients along a path become an attribution.

A path is cut into segments ``s``; each segment has one gradient ``g_s`` (taken at one point of it),
a displacement ``delta_s`` (the path's step, in pixel space) and, at its ends, the explained values
``f(start_s)`` and ``f(end_s)``. An aggregator maps each segment to a contribution and reduces them.

* :class:`Riemann` — ``sum_s g_s * delta_s`` (IG, GuidedIG, BlurIG as published).
* :class:`IDGI` — ``sum_s g_s^2 / (g_s . g_s) * (f(end_s) - f(start_s))`` (Yang et al., CVPR 2023,
  Algorithm 1). Exact completeness for any number of steps; a segment whose gradient is all zero
  contributes nothing (the reference code returns NaN there).
* :class:`MaxGradient` — per-feature ``max_s g_s`` (GGIG, Algorithm 1 line 10).
"""
from __future__ import annotations

from typing import List, Optional, Type

import tensorflow as tf

from ..checks import did_you_mean
from ..registry import Registry


class Aggregator:
    """Base: ``contribution(g, delta)`` per segment (batched), reduced by ``reduce`` ('sum' or 'max')."""
    name = "base"
    needs_values = False  # contributions are scaled by f(end) - f(start)
    needs_delta = False
    reduce = "sum"

    def contribution(self, gradients: tf.Tensor, deltas: Optional[tf.Tensor]) -> tf.Tensor:
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class Riemann(Aggregator):
    """Path integral by a Riemann sum: ``sum_s g_s * delta_s``."""
    name = "riemann"
    needs_delta = True

    def contribution(self, gradients, deltas):
        return tf.cast(gradients, tf.float64) * tf.cast(deltas, tf.float64)


class IDGI(Aggregator):
    """Important Direction Gradient Integration (IDGI Algorithm 1): ``g*g*d / sum(g*g)`` per step."""
    name = "idgi"
    needs_values = True

    def contribution(self, gradients, deltas=None):
        g = tf.cast(gradients, tf.float64)
        g2 = g * g
        axes = list(range(1, len(g.shape)))
        norm = tf.reduce_sum(g2, axis=axes, keepdims=True)
        return tf.math.divide_no_nan(g2, norm)


class MaxGradient(Aggregator):
    """Per-feature maximum of all gradients (GGIG Algorithm 1, line 10): signed, per channel."""
    name = "max"
    reduce = "max"

    def contribution(self, gradients, deltas=None):
        return tf.cast(gradients, tf.float64)


AGGREGATORS: Registry[Type[Aggregator]] = Registry("aggregator", lambda cls: (cls.__doc__ or "").strip().split("\n")[0])
for _cls in (Riemann, IDGI, MaxGradient):
    AGGREGATORS.register(_cls.name, _cls)
# the aggregators every path method accepts, default first; one shared list, so an aggregator
# registered later is accepted by every path method (and "<method>+<name>" resolves)
PATH_AGGREGATORS: List[str] = ["riemann", "idgi"]


def register_aggregator(cls: Type[Aggregator], path_methods: bool = True) -> Type[Aggregator]:
    """Register ``cls`` under ``cls.name``; ``path_methods``: every path method accepts it."""
    AGGREGATORS.register(cls.name, cls)
    if path_methods:
        PATH_AGGREGATORS.append(cls.name)
    return cls


def unregister_aggregator(name: str) -> None:
    AGGREGATORS.unregister(name)
    if name in PATH_AGGREGATORS:
        PATH_AGGREGATORS.remove(name)


def get_aggregator(name) -> Aggregator:
    if isinstance(name, Aggregator):
        return name
    if name not in AGGREGATORS:
        raise ValueError(f"aggregator must be one of {sorted(AGGREGATORS)}, got {name!r}"
                         f"{did_you_mean(name, AGGREGATORS)}")
    return AGGREGATORS.find(name)()
