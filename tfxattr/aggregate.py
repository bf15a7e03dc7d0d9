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

from typing import Dict, List, Optional, Tuple, Type

import numpy as np
import tensorflow as tf

from .batching import per_image
from .checks import did_you_mean


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


AGGREGATORS: Dict[str, Type[Aggregator]] = {"riemann": Riemann, "idgi": IDGI, "max": MaxGradient}
# the aggregators every path method accepts, default first; one shared list, so an aggregator
# registered later is accepted by every path method (and "<method>+<name>" resolves)
PATH_AGGREGATORS: List[str] = ["riemann", "idgi"]


def register_aggregator(cls: Type[Aggregator], path_methods: bool = True) -> Type[Aggregator]:
    """Register ``cls`` under ``cls.name``; ``path_methods``: every path method accepts it."""
    if cls.name in AGGREGATORS:
        raise ValueError(f"an aggregator named {cls.name!r} is already registered")
    AGGREGATORS[cls.name] = cls
    if path_methods:
        PATH_AGGREGATORS.append(cls.name)
    return cls


def unregister_aggregator(name: str) -> None:
    AGGREGATORS.pop(name, None)
    if name in PATH_AGGREGATORS:
        PATH_AGGREGATORS.remove(name)


def get_aggregator(name) -> Aggregator:
    if isinstance(name, Aggregator):
        return name
    if name not in AGGREGATORS:
        raise ValueError(f"aggregator must be one of {sorted(AGGREGATORS)}, got {name!r}"
                         f"{did_you_mean(name, AGGREGATORS)}")
    return AGGREGATORS[name]()


class Accumulator:
    """Collects segment contributions per image; holds IDGI terms until both end values are known.

    ``seg_start[s]`` / ``seg_end[s]`` index the path's value points (-1: the segment has no ends and
    is skipped by aggregators that need values). Memory: the running result plus pending terms,
    which stay few when segments arrive in path order.
    """

    def __init__(self, aggregator: Aggregator, n_images: int, feature_shape, n_points: int,
                 seg_start=None, seg_end=None):
        self.aggregator = aggregator
        fill = -np.inf if aggregator.reduce == "max" else 0.0
        self.result = np.full((n_images,) + tuple(feature_shape), fill, np.float64)
        self.values = np.full((n_images, n_points), np.nan, np.float64)
        self.seg_start = None if seg_start is None else np.asarray(seg_start)
        self.seg_end = None if seg_end is None else np.asarray(seg_end)
        self._pending: Dict[Tuple[int, int], np.ndarray] = {}

    def add_values(self, image_ids, point_ids, values):
        self.values[np.asarray(image_ids), np.asarray(point_ids)] = np.asarray(values, np.float64)
        if self._pending:
            self._resolve()

    def add_segments(self, image_ids, seg_ids, gradients, deltas=None):
        agg = self.aggregator
        contrib = agg.contribution(gradients, deltas).numpy()
        image_ids = np.asarray(image_ids)
        if not agg.needs_values:
            per_image(image_ids, contrib, len(self.result), np.maximum if agg.reduce == "max" else np.add,
                      out=self.result)
            return
        for k, (i, s) in enumerate(zip(image_ids, np.asarray(seg_ids))):
            if self.seg_start[s] < 0 or self.seg_end[s] < 0:
                continue
            self._pending[(int(i), int(s))] = contrib[k]
        self._resolve()

    def _resolve(self):
        done = []
        for (i, s), u in self._pending.items():
            f0, f1 = self.values[i, self.seg_start[s]], self.values[i, self.seg_end[s]]
            if np.isnan(f0) or np.isnan(f1):
                continue
            self.result[i] += u * (f1 - f0)
            done.append((i, s))
        for key in done:
            del self._pending[key]

    def finish(self) -> np.ndarray:
        if self._pending:
            raise RuntimeError(f"{len(self._pending)} path segments never received their end values")
        out = self.result
        if self.aggregator.reduce == "max":
            out = np.where(np.isfinite(out), out, 0.0)
        return out.astype(np.float32)
