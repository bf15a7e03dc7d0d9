"""Vanilla gradient (Simonyan et al., 2014): ``df_c/dx``, optionally times the input."""
from __future__ import annotations

import tensorflow as tf

from ..batching import as_rows, chunk_map, finish, rows
from ..checks import boolean
from .base import Method


class Gradient(Method):
    name = "gradient"
    summary = "vanilla gradient df_c/dx (times_input=True: gradient x input)"
    defaults = {"times_input": False}

    def validate(self):
        boolean(self.options["times_input"], "times_input")

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        x, t = as_rows(images, targets)
        (g,) = chunk_map(lambda x, t: (evaluator.values_and_gradients(x, t)[1],), [tf.float32], rows(x),
                         evaluator.batch_size, x, t)
        return finish(g * x if self.options["times_input"] else g)
