"""The explained scalar ``f_c``: which number of a model's raw output an attribution explains.

One :class:`Objective` serves the adapter (pixels -> f_c and its gradient) and the layer chain
(an inner representation -> the same f_c), so a new kind of head is one subclass, not two edits.
"""
from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from ..checks import one_of

OUTPUTS = ("logit", "probability")


@dataclass(frozen=True)
class Objective:
    """A softmax classifier head. ``output="logit"`` explains the raw output (the logits, or the
    probabilities of a model that already ends in a softmax); ``"probability"`` explains the softmax
    probability, never applying softmax twice."""
    output: str = "logit"
    ends_in_softmax: bool = False

    def __post_init__(self):
        one_of(self.output, "output", OUTPUTS)

    def scores(self, raw: tf.Tensor) -> tf.Tensor:
        """(N, classes): the explained score of every class."""
        raw = tf.cast(raw, tf.float32)
        if self.output == "probability" and not self.ends_in_softmax:
            return tf.nn.softmax(raw, axis=-1)
        return raw

    def probabilities(self, raw: tf.Tensor) -> tf.Tensor:
        """(N, classes) class probabilities, whatever ``output`` says (metrics score these)."""
        raw = tf.cast(raw, tf.float32)
        return raw if self.ends_in_softmax else tf.nn.softmax(raw, axis=-1)

    def explained(self, raw: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """(N,): ``f_c`` of each row for its int target."""
        return tf.gather(self.scores(raw), targets, axis=1, batch_dims=1)

    def with_output(self, output: str) -> "Objective":
        return type(self)(output=output, ends_in_softmax=self.ends_in_softmax)
