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
    (:class:`~tfxattr.paths.PathPlan`). ``x``, ``b`` are the rows of one chunk; ``image_ids`` says
    which image each row belongs to (paths with per-image data index by it)."""
    plan: Any

    def points(self, x, b, point_ids, image_ids) -> tf.Tensor:
        """The path points ``point_ids`` (one per row) of rows ``x``/``b``."""

    def deltas(self, x, b, seg_ids, image_ids, points=None) -> tf.Tensor:
        """The displacement of segments ``seg_ids`` (one per row), weight included."""


class AdaptivePath(Protocol):
    """A path whose next point depends on the gradient at the current one (Guided IG, GGIG).

    The engine walks ``steps`` steps with all rows in lockstep: ``start`` gives the first points;
    ``advance(state, gradients, step)`` gives the next state. ``points(state)`` are where gradients
    are taken. Rows are (image, start point) pairs: ``starts`` start points per image.
    """
    steps: int
    starts: int

    def start(self, x, b, start_ids) -> Any:
        """The state at step 0 for rows ``x``/``b`` starting at ``start_ids``."""

    def points(self, state) -> tf.Tensor:
        """Float32 (rows, H, W, C) points of ``state``."""

    def advance(self, state, gradients, step: int) -> Any:
        """The state after ``step`` given the gradients at ``points(state)``."""

    def delta(self, old, new) -> tf.Tensor:
        """The displacement from state ``old`` to ``new`` (for Riemann aggregation)."""


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
