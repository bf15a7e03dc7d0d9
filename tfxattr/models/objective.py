"""The explained scalar ``f_c``: which number of a model's raw output an attribution explains.

One :class:`Objective` serves the adapter (pixels -> f_c and its gradient) and the layer chain
(an inner representation -> the same f_c), so a new kind of head is one subclass, not two edits.

Heads (what the model's raw output is), detected from the model or given as ``head=``:

* ``"softmax_logits"`` / ``"softmax"``: K >= 2 mutually exclusive classes, logits or probabilities;
* ``"sigmoid_logits"`` / ``"sigmoid"``: sigmoid units, logits or probabilities. K units are K
  independent labels (multi-label: each unit its own logit and probability, never a softmax across
  units); one unit is a binary classifier with two classes: class 1 explains the logit z, class 0
  explains -z, with probabilities sigma(z) and 1 - sigma(z).
"""
from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from ..checks import one_of
from .options import HEADS, OUTPUTS  # model options: declared with them

# float32 resolution next to 1: sigma(z) rounds to exactly 1 above z ~ 16.6, so logits recovered from
# probabilities are clipped there (and their gradient vanishes beyond)
PROBABILITY_CLIP = 1e-7


@dataclass(frozen=True)
class Objective:
    """A softmax classifier head. ``output="logit"`` explains the raw output (the logits, or the
    probabilities of a model that already ends in a softmax); ``"probability"`` explains the softmax
    probability, never applying softmax twice."""
    output: str = "logit"
    ends_in_softmax: bool = False

    def __post_init__(self):
        one_of(self.output, "output", OUTPUTS)

    @property
    def head(self) -> str:
        return "softmax" if self.ends_in_softmax else "softmax_logits"

    def classes(self, units: int) -> int:
        """How many classes a raw output of ``units`` units has."""
        return units

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

    def describe(self, units: int) -> str:
        kind = "probabilities" if self.ends_in_softmax else "logits"
        return f"softmax head over {units} classes (the model outputs {kind})"


@dataclass(frozen=True)
class SigmoidObjective(Objective):
    """Sigmoid units: each unit's own logit ``z_k`` or probability ``sigma(z_k)``; one unit is a
    binary classifier whose class 0 is ``-z``. ``ends_in_sigmoid``: the raw output already holds
    ``sigma(z)``; its logits are recovered as ``log(p) - log(1 - p)``."""
    ends_in_sigmoid: bool = False
    binary: bool = False

    @property
    def head(self) -> str:
        return "sigmoid" if self.ends_in_sigmoid else "sigmoid_logits"

    def classes(self, units: int) -> int:
        return 2 if self.binary else units

    def logits(self, raw: tf.Tensor) -> tf.Tensor:
        z = tf.cast(raw, tf.float32)
        if self.ends_in_sigmoid:
            p = tf.clip_by_value(z, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
            z = tf.math.log(p) - tf.math.log1p(-p)
        return tf.concat([-z, z], axis=-1) if self.binary else z

    def scores(self, raw):
        z = self.logits(raw)
        return z if self.output == "logit" else tf.sigmoid(z)

    def probabilities(self, raw):
        return tf.sigmoid(self.logits(raw))

    def with_output(self, output: str) -> "SigmoidObjective":
        return type(self)(output=output, ends_in_sigmoid=self.ends_in_sigmoid, binary=self.binary)

    def describe(self, units: int) -> str:
        kind = "probabilities" if self.ends_in_sigmoid else "logits"
        what = "binary classifier (class 1: the unit's logit z, class 0: -z)" if self.binary else \
            f"multi-label head of {units} independent sigmoid units"
        return f"{what}; the model outputs {kind}"


def objective_for(head: str, output: str, units: int) -> Objective:
    """The objective of a model whose raw output is ``head`` (one of HEADS) with ``units`` units."""
    one_of(head, "head", HEADS)
    if head.startswith("sigmoid"):
        return SigmoidObjective(output, ends_in_sigmoid=head == "sigmoid", binary=units == 1)
    if units < 2:
        raise ValueError(f"head={head!r} needs at least two classes; a model with one output unit is a binary "
                         "classifier: its head is 'sigmoid_logits' or 'sigmoid'")
    return Objective(output, ends_in_softmax=head == "softmax")
