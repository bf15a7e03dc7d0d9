"""The one channel reduction: an attribution (..., H, W, C) becomes the map (..., H, W) that metrics rank,
plots colour, the evaluation store scores and an exported SavedModel returns as ``maps``.

The rule (``reduction="auto"``, the default everywhere):

* **C == 1: the channel itself, signed.** A method that returns one channel (the CAMs, IIA, occlusion,
  RISE, XRAI, the learned explainer, ...) returns *its map*: taking |a| would turn its negative evidence
  into positive evidence and reorder the pixels that every ranking metric reads. (An attribution of a
  one-channel *image*, e.g. the gradient of a greyscale model, is C == 1 too and is kept signed as well:
  shape cannot tell the two apart; pass ``reduction="sum_abs"`` for its magnitude.)
* **C > 1: the sum of |a| over channels**, PAIR's ``VisualizeImageGrayscale`` convention (IG, IDGI and
  GGIG's papers show it): the magnitude of a pixel's attribution, whatever its colour channels' signs.

So "auto" is "sum" for one channel (the sum of one value is that value) and "sum_abs" for several. The
other named reductions (:data:`CHANNEL_REDUCTIONS`) apply as named whatever C is:

* ``sum_abs``: sum of |a| over channels; ``abs_sum``: |sum of a| (GGIG's figures); ``sum``: the signed
  sum (Rao et al.'s grid maps); ``positive``: the positive part of the signed sum; ``max_abs``: the
  largest |a| over channels.

A caller that reproduces a paper's convention names the reduction it needs (the grid localization metric
of Rao et al. defaults to its per-method choice ``"rao"``, :mod:`tfxattr.metrics.grids.maps`); everything
else (``Explanation.map``, the metrics given (N,H,W,C) arrays, ``tfxattr eval``, the figures, the
exported ``maps``) uses "auto". :func:`reduce_channels` takes numpy arrays (float32 maps back) and
``tf.Tensor``s (tensor maps back, usable inside a ``tf.function``: the exported SavedModel calls it).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from .checks import one_of

#: "auto" (the rule above), then the named reductions
CHANNEL_REDUCTIONS = ("auto", "sum_abs", "abs_sum", "sum", "positive", "max_abs")
#: the named reductions "auto" chooses between, and the ones a caller may name
NAMED_REDUCTIONS = CHANNEL_REDUCTIONS[1:]
#: what each reduction puts on a figure's colour bar
REDUCTION_LABELS = {"sum_abs": "sum of |a| over channels", "abs_sum": "|sum of a over channels|",
                    "sum": "sum of a over channels", "positive": "positive part of the channel sum",
                    "max_abs": "max of |a| over channels", "single": "the method's map, signed",
                    "auto": "sum of |a| over channels; a single-channel map as it is"}


def check_reduction(reduction: str, name: str = "reduction") -> str:
    """``reduction`` if it is one of :data:`CHANNEL_REDUCTIONS`; else a ValueError with the closest names."""
    return one_of(reduction, name, CHANNEL_REDUCTIONS)


def resolve_reduction(reduction: str, channels) -> str:
    """The named reduction that ``reduction`` applies to an attribution of ``channels`` channels: "auto" is
    "sum" (the signed channel itself) for one channel and "sum_abs" for several; a named one is itself."""
    if check_reduction(reduction) != "auto":
        return reduction
    return "sum" if channels == 1 else "sum_abs"


def reduction_label(reduction: str, channels=None) -> str:
    """The colour-bar text of ``reduction`` on an attribution of ``channels`` channels (None: unknown)."""
    if reduction == "auto" and channels is not None:
        return REDUCTION_LABELS["single"] if channels == 1 else REDUCTION_LABELS["sum_abs"]
    return REDUCTION_LABELS.get(reduction, str(reduction))


def reduce_channels(attribution, reduction: str = "auto"):
    """(..., H, W, C) -> (..., H, W) by ``reduction`` (module docstring: "auto" keeps a single channel
    signed and sums |a| over several). numpy in, float32 numpy out; a ``tf.Tensor`` in (eager or inside a
    ``tf.function``), a tensor out of the same float dtype."""
    check_reduction(reduction)
    if tf.is_tensor(attribution):
        return _reduce_tensor(attribution, reduction)
    a = np.asarray(attribution, np.float32)
    if a.ndim < 3:
        raise ValueError(f"an attribution to reduce must be (..., H, W, C), got shape {a.shape}")
    how = resolve_reduction(reduction, a.shape[-1])
    if how == "sum_abs":
        return np.abs(a).sum(-1)
    if how == "abs_sum":
        return np.abs(a.sum(-1))
    if how == "sum":
        return a.sum(-1)
    if how == "positive":
        return np.clip(a.sum(-1), 0, None)
    return np.abs(a).max(-1)  # max_abs


_TF_REDUCTIONS = {
    "sum_abs": lambda a: tf.reduce_sum(tf.abs(a), axis=-1),
    "abs_sum": lambda a: tf.abs(tf.reduce_sum(a, axis=-1)),
    "sum": lambda a: tf.reduce_sum(a, axis=-1),
    "positive": lambda a: tf.nn.relu(tf.reduce_sum(a, axis=-1)),
    "max_abs": lambda a: tf.reduce_max(tf.abs(a), axis=-1),
}


def _reduce_tensor(attribution, reduction):
    a = attribution if attribution.dtype.is_floating else tf.cast(attribution, tf.float32)
    if a.shape.rank is not None and a.shape.rank < 3:
        raise ValueError(f"an attribution to reduce must be (..., H, W, C), got shape {a.shape}")
    channels = a.shape[-1] if a.shape.rank is not None else None
    if reduction != "auto" or channels is not None:
        return _TF_REDUCTIONS[resolve_reduction(reduction, channels)](a)
    # the channel count is only known when the graph runs
    return tf.cond(tf.equal(tf.shape(a)[-1], 1), lambda: _TF_REDUCTIONS["sum"](a),
                   lambda: _TF_REDUCTIONS["sum_abs"](a))
