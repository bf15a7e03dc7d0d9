"""Iterated Integrated Attributions for Vision Transformers (Barkan et al., ICCV 2023, Sec. 3.4, Eq. 6, 10).

The attention probabilities ``u = A_l`` (N, heads, T, T, after the softmax) of the chosen blocks are
interpolated from the zero reference (Eq. 6, ``r = 0``: softmax entries are positive),
``v = a_l A_l``, and the block continues with ``v`` (times the values, the output projection, the
residual and the MLP) into the rest of the network. ``"input"`` in ``layers`` also interpolates the
image from ``baseline`` (the paper's IIA2/IIA3: input + last block, + penultimate block). A block's
attention is recomputed from the (interpolated) stream below it, so nested levels compose as Eq. 10::

    m = 1/n^beta  sum_{k_0} ... sum_{k_l}  q(a_0, ..., a_l),   a_j = (k_j + offset) / n

The integrand ``q`` is the Gradient Rollout of the interpolated network (:mod:`.rollout`): every
block's ``mean_h [A_i * dA_i]^+`` (the interpolated ``v`` and its gradient at the chosen blocks),
plus identity, rows normalised, multiplied; the class token's row at the patch tokens, resized
bilinearly to the input. Every (image, a_0, ..., a_l) combination is one row; rows run in chunks of
``batch_size``, each one forward and one backward pass.

What the paper leaves open, and how the authors' repository (``seg_methods_vit.py``, ``get_iia_vit``)
settles it:

* Eq. 9's factor ``(u - r)`` has no counterpart: ``u - r`` is an attention matrix and GR a patch map;
  the code multiplies by nothing (the paper: "only a subsequent resize operation is necessary"). Here too.
* Where the integral sits: the code averages the per-block ``[A * dA]^+`` matrices (per head, then the
  head mean) over all nested steps and applies ONE rollout to the averages. ``integrate="matrices"``
  does that; the default ``"rollout"`` integrates the GR map itself, the paper's ``q = GR`` read literally.
  The rollout is not linear (row normalisation, products), so the two differ.
* The grid: the code uses ``linspace(0, 1, n + 1)`` (both ends, n + 1 points, 5 steps) and the
  mean; the default here is Eq. 10's right rule (``a = k/n, k = 1..n``, the paper's n = 10).
* The code feeds the interpolated attention as a detached tensor, so gradients of the blocks below
  do not flow through the last block's attention; here ``v = a A(h)`` is Eq. 6 as written (with
  ``steps=1`` and ``layers=["last_block"]`` IIA equals Gradient Rollout).
* Its input reference is zero in the network's normalised space; here ``baseline`` (black pixels).
"""
from __future__ import annotations

import itertools

import numpy as np
import tensorflow as tf

from ..batching import as_rows, chunk_loop, count, finish, rows
from ..checks import one_of, positive_int
from ..models.attention import BLOCK_NAMES, transformer_chain
from ..models.compat import graph_function
from ..models.layers import INPUT, input_spec
from ..paths.rules import EQUAL_WEIGHT_RULES, equal_weight_params
from ..progress import progress_bar
from .base import Method
from .rollout import gradient_weighted, rollout, token_maps_to_images

INTEGRATE = ("rollout", "matrices")


class IIAViT(Method):
    """IIA on keras-hub ViTs over ``layers``: "input", "last_block", "penultimate_block" or block indices
    (negative from the end); ``steps`` per layer. Output: (N, H, W, 1)."""
    name = "iia_vit"
    summary = ("IIA for ViTs (Barkan et al. 2023, Sec. 3.4): attention of chosen blocks interpolated from zero, "
               "Gradient Rollout integrand, nested as Eq. 10")
    architecture = "vit"
    defaults = {"layers": ("last_block",), "steps": 10, "rule": "right", "baseline": "black",
                "integrate": "rollout"}

    def validate(self):
        layers = self.layers
        ok = lambda v: v == INPUT or v in BLOCK_NAMES or (isinstance(v, (int, np.integer)) and not isinstance(v, bool))  # noqa: E731
        if not layers or not all(ok(v) for v in layers):
            raise ValueError(f"layers must be a non-empty list of 'input', 'last_block', 'penultimate_block' or "
                             f"block indices, got {self.options['layers']!r}")
        if len(set(layers)) != len(layers):
            raise ValueError(f"layers must not repeat a layer, got {list(layers)}")
        positive_int(self.options["steps"], "steps")
        one_of(self.options["rule"], "rule", EQUAL_WEIGHT_RULES)
        one_of(self.options["integrate"], "integrate", INTEGRATE)

    @property
    def layers(self) -> tuple:
        layers = self.options["layers"]
        return (layers,) if isinstance(layers, (str, int, np.integer)) else tuple(layers)

    def plan(self, chain):
        """``(input interpolated?, sorted block indices)``; a ValueError when two names are one block."""
        blocks = [chain.block_index(v) for v in self.layers if v != INPUT]
        if len(set(blocks)) != len(blocks):
            raise ValueError(f"layers {list(self.layers)} name the same block twice")
        return INPUT in self.layers, sorted(blocks)

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        chain = transformer_chain(evaluator, self.name)
        with_input, blocks = self.plan(chain)
        alphas = equal_weight_params(self.options["steps"], self.options["rule"]).astype(np.float32)
        levels = int(with_input) + len(blocks)
        grid = tf.constant(list(itertools.product(alphas, repeat=levels)), tf.float32)  # (n^beta, levels)
        g = int(grid.shape[0])
        x, t = as_rows(images, targets)
        baselines = tf.convert_to_tensor(self.baselines(evaluator, images), tf.float32) if with_input else x
        matrices = self.options["integrate"] == "matrices"
        fn = chain.function(f"iia_vit{with_input}{blocks}{self.options['integrate']}",
                            lambda: self._build(chain, with_input, blocks))
        tokens = chain.grid[0] * chain.grid[1]
        per_row = [chain.depth, tokens + chain.prefix, tokens + chain.prefix] if matrices else [tokens]
        n_img = rows(x)

        def body(start, stop, acc):  # row k: image k // g at the alphas grid[k % g]
            k = tf.range(start, stop)
            img = k // g
            out = fn(tf.gather(x, img), tf.gather(baselines, img), tf.gather(t, img), tf.gather(grid, k % g))
            return (tf.tensor_scatter_nd_add(acc, img[:, None], tf.cast(out, tf.float64)),)

        acc = tf.zeros(tf.concat([[n_img], per_row], 0), tf.float64)
        batch = evaluator.batch_size
        with progress_bar(count(n_img * g, batch) if tf.executing_eagerly() else 0, self.name, progress) as bar:
            (acc,) = chunk_loop(n_img * g, batch, body, (acc,), bar=bar)
        acc = tf.ensure_shape(tf.cast(acc / g, tf.float32), [None] + per_row)  # traced: the loop relaxed it
        if matrices:
            acc = rollout(tf.unstack(acc, axis=1), chain.prefix)
        return finish(token_maps_to_images(chain, acc, x.shape[1:3]))

    def _build(self, chain, with_input, blocks):
        matrices = self.options["integrate"] == "matrices"
        column = {b: i + int(with_input) for i, b in enumerate(blocks)}

        def fn(x, baseline, targets, alphas):
            if with_input:
                x = baseline + alphas[:, :1, None, None] * (x - baseline)

            def replace(i, attention):
                if i not in column:
                    return attention
                return alphas[:, column[i], None, None, None] * attention
            _, used, gradients = chain.explained_and_gradients(x, targets, replace)
            weighted = [gradient_weighted(a, g) for a, g in zip(used, gradients)]
            return tf.stack(weighted, axis=1) if matrices else rollout(weighted, chain.prefix)
        spec = input_spec(chain.stem)
        return graph_function(fn, input_signature=[spec, spec, tf.TensorSpec([None], tf.int32),
                                                tf.TensorSpec([None, int(with_input) + len(blocks)], tf.float32)])
