"""Learn to Rank (Schinagl et al. 2026): the map of a trained explainer network, one forward pass.

The explainer (``explainer=``: a keras.Model, a ``.keras`` file, ``"demo"`` for the demo model, or
``"untrained"``: a randomly initialised default explainer, for tests and timing) is trained by
:func:`tfxattr.learn.train_explainer`. Its map of the explained class, resized to the images, is
min-max scaled to [0, 1] per image: the ranking is what the explainer learned, and the scaled map is
non-negative, so ``Explanation.map`` (the sum of |a|) keeps that ranking. Attributions are (N, H, W, 1).
"""
from __future__ import annotations

import os

import tensorflow as tf

from ..batching import as_rows, chunk_map, finish, rows
from ..learn.explainer import NAMED, explainer_maps, load_explainer
from .base import Method

# keeps the min-max scaling finite on a constant map (which then stays constant: metrics skip it)
FLAT = 1e-12


def scaled(maps: tf.Tensor) -> tf.Tensor:
    """(N, H, W) maps min-max scaled to [0, 1] per image, as (N, H, W, 1)."""
    lo = tf.reduce_min(maps, axis=[1, 2], keepdims=True)
    span = tf.reduce_max(maps, axis=[1, 2], keepdims=True) - lo
    return ((maps - lo) / tf.maximum(span, FLAT))[..., None]


class Learned(Method):
    name = "learned"
    summary = "Learn to Rank: a trained explainer network (one forward pass; explainer='demo' for the demo model)"
    defaults = {"explainer": "demo"}

    def validate(self):
        import keras

        e = self.options["explainer"]
        if not (isinstance(e, keras.Model) or e in NAMED or
                (isinstance(e, (str, os.PathLike)) and os.fspath(e).endswith(".keras"))):
            raise ValueError(f"explainer must be a keras.Model, a .keras file or one of {NAMED}, got {e!r}")

    def explainer(self, evaluator, seed=None):
        """The explainer network for ``evaluator``; the last one is kept, so tracing ``attribute`` (which
        tf.function may do twice) creates an ``"untrained"`` explainer's weights once."""
        last = getattr(self, "_last_explainer", None)
        if last is not None and last[0] is evaluator and last[1] == (seed or 0):
            return last[2]
        explainer = load_explainer(self.options["explainer"], evaluator, seed or 0)
        self._last_explainer = (evaluator, seed or 0, explainer)
        return explainer

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        with tf.init_scope():  # built (or loaded) eagerly, even when traced: its weights are captured by export
            explainer = self.explainer(evaluator, seed)
        x, t = as_rows(images, targets)
        shape = [None] + list(x.shape[1:])  # a traced chunk's slice may lose the static size the resize needs

        def chunk(x, t):
            return (scaled(explainer_maps(explainer, evaluator, tf.ensure_shape(x, shape), t)),)
        (out,) = chunk_map(chunk, [tf.float32], rows(x), evaluator.batch_size, x, t)
        return finish(out)
