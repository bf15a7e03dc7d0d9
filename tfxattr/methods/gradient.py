"""Vanilla gradient (Simonyan et al., 2014): ``df_c/dx``, optionally times the input."""
from __future__ import annotations

import numpy as np

from ..checks import boolean
from .base import Method


class Gradient(Method):
    name = "gradient"
    summary = "vanilla gradient df_c/dx (times_input=True: gradient x input)"
    defaults = {"times_input": False}

    def validate(self):
        boolean(self.options["times_input"], "times_input")

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        _, g = evaluator.values_and_gradients(images, targets)  # the evaluator chunks by its batch_size
        g = np.asarray(g, np.float32)
        return g * images if self.options["times_input"] else g
