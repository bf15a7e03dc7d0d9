"""The contracts between methods, models and paths, written down as ``typing.Protocol``s.

A method receives an *evaluator*: the model seen as "pixels -> the explained scalar f_c and its
gradient". :class:`~tfxattr.models.adapter.ModelAdapter` implements every protocol here;
:class:`~tfxattr.interop.PairEvaluator` (a PAIR ``call_model_function``) implements
:class:`GradientEvaluator`. Methods that split the model at layers need a :class:`KerasEvaluator`.

A path method combines a :class:`Path` (fixed points, any chunk of them computable on its own) or
an :class:`AdaptivePath` (the next points depend on the last gradients) with an aggregator.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Protocol, Sequence, Tuple, runtime_checkable

import numpy as np
import tensorflow as tf


@runtime_checkable
class GradientEvaluator(Protocol):
    """What a gradient method may ask of a model. Arrays are float32 pixels (N, H, W, C) and int32
    targets (N,); every call is chunked by ``batch_size`` inside the evaluator."""
    input_shape: Tuple[Optional[int], Optional[int], Optional[int]]
    num_classes: int
    pixel_range: Tuple[float, float]
    batch_size: int

    def values(self, x, targets) -> tf.Tensor:
        """``f_c(x)`` (N,): the explained scalar of each row for its target, no gradient."""

    def values_and_gradients(self, x, targets) -> Tuple[tf.Tensor, tf.Tensor]:
        """``(f_c(x) (N,), df_c/dx (N, H, W, C))`` from one forward pass."""

    def scores(self, x) -> np.ndarray:
        """The explained score of every class (N, classes) (top-1 targets are taken from it)."""

    def network_view(self) -> Tuple[Callable, "GradientEvaluator"]:
        """``(to_network, evaluator)``: pixels -> the tensor the network itself sees, and an evaluator
        of the network from that tensor on (identity and itself when the evaluator cannot tell)."""


@runtime_checkable
class KerasEvaluator(GradientEvaluator, Protocol):
    """A gradient evaluator backed by a ``keras.Model``: what layer methods (IIA, Grad-CAM) need to
    split the model at named layers and explain the same scalar from an inner representation."""
    name: str
    keras_model: Any
    preprocess: Optional[Callable]
    objective: Any  # tfxattr.models.objective.Objective


class Path(Protocol):
    """Fixed points from a baseline ``b`` to the input ``x``, described by a ``plan``
    (:class:`~tfxattr.paths.rules.PathPlan`: point parameters; per segment the point where its gradient is
    taken, its end points and weight). ``x``, ``b`` are the rows of one chunk; ``image_ids`` says
    which image each row belongs to (paths with per-image data index by it; nothing is bound).
    The engine takes any chunk of (image, point) pairs on its own, so memory never holds a whole path.
    """
    adaptive: bool  # False: the engine integrates the plan (see AdaptivePath)
    plan: Any

    def points(self, x, b, point_ids, image_ids) -> tf.Tensor:
        """Float32 (rows, H, W, C): the path point ``point_ids[i]`` of row i."""

    def deltas(self, x, b, seg_ids, image_ids, points=None) -> tf.Tensor:
        """(rows, H, W, C): the displacement of segment ``seg_ids[i]`` of row i, weight included
        (Riemann aggregation). ``points``: the rows' gradient points, if already computed."""


class AdaptivePath(Protocol):
    """A path whose next point depends on the gradient at the current one (Guided IG, GGIG).

    Rows are (image, start point) pairs, ``starts`` start points per image. The engine cuts them into
    chunks of ``batch_size`` rows and walks each chunk through ``steps`` steps in lockstep: gradient
    at ``points(state)`` -> aggregator (with ``deltas(state, next)`` or the f-values at both ends) ->
    ``next = advance(state, gradients, step)``. The state is whatever the path needs (a tensor, a
    dataclass); only the path reads it.
    """
    adaptive: bool  # True: the engine walks the path in lockstep (see Path)
    steps: int
    starts: int

    def start(self, x, b, start_ids, image_ids) -> Any:
        """The state at step 0 of rows ``x``/``b`` (image ``image_ids[i]``, start ``start_ids[i]``)."""

    def points(self, state) -> tf.Tensor:
        """Float32 (rows, H, W, C): where the gradients of this step are taken."""

    def advance(self, state, gradients, step: int) -> Any:
        """The state after ``step`` (0-based) given the gradients at ``points(state)``."""

    def deltas(self, old, new) -> tf.Tensor:
        """(rows, H, W, C): the displacement from state ``old`` to ``new`` (Riemann aggregation)."""


def missing_members(obj, protocol) -> Sequence[str]:
    """Names ``protocol`` requires that ``obj`` lacks (for clear errors and the contract tests)."""
    names = [n for n in getattr(protocol, "__protocol_attrs__", ()) or _annotated(protocol)]
    return sorted(n for n in names if not hasattr(obj, n))


def _annotated(protocol):
    out = set()
    for klass in protocol.__mro__:
        if klass is Protocol or klass is object:
            continue
        out.update(getattr(klass, "__annotations__", {}))
        out.update(k for k, v in vars(klass).items() if callable(v) and not k.startswith("_"))
    return out
