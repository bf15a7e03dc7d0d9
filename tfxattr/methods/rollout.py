"""What the attention methods share: the rollout rules and a driver that runs a token-map function over
images in chunks of ``batch_size``.

Notation (per block ``i``, per image): ``A_i`` (heads, T, T) the attention probabilities after the
softmax, ``G_i = df_c/dA_i`` their gradient, ``mean_h`` the mean over heads, ``[.]^+`` the positive part.

* Attention Rollout (Abnar & Zuidema 2020, Sec. 3): ``M_i = mean_h A_i``; ``R = prod_i norm(M_i + I)``
  with later blocks on the left and ``norm`` dividing each row by its sum; the map is the class
  token's row of ``R`` at the patch tokens. (The paper's ``0.5 A + 0.5 I`` is the same matrix: rows
  of ``A`` sum to one.)
* Gradient Rollout (IIA, Barkan et al. 2023, Sec. 3.4, as in the authors' repository): the same
  rollout with ``M_i = mean_h [A_i * G_i]^+`` (the positive part per head, then the head mean).
* GAE (Chefer et al., ICCV 2021, Eq. 5-6 / rules 5-6): ``R = I``; ``R <- R + M_i R`` for each block,
  ``M_i = mean_h [G_i * A_i]^+``; the map is the class token's row of ``R`` at the patch tokens.
"""
from __future__ import annotations

import tensorflow as tf

from ..batching import as_rows, chunk_map, count, finish, rows
from ..models.attention import transformer_chain
from ..models.compat import graph_function
from ..models.layers import input_spec
from ..progress import progress_bar
from .base import Method


def head_mean(attention):
    """(N, heads, T, T) -> (N, T, T)."""
    return tf.reduce_mean(attention, axis=1)


def gradient_weighted(attention, gradient):
    """``mean_h [A * G]^+`` (N, T, T): the positive part per head, then the head mean."""
    return tf.reduce_mean(tf.nn.relu(attention * gradient), axis=1)


def rollout(matrices, prefix: int = 1):
    """Attention rollout of non-negative (N, T, T) ``matrices`` (first block first): the class token's
    row of ``prod_i norm(M_i + I)`` at the patch tokens, (N, T - prefix)."""
    eye = tf.eye(tf.shape(matrices[0])[-1], dtype=matrices[0].dtype)
    joint = None
    for m in matrices:
        m = m + eye
        m = m / tf.reduce_sum(m, axis=-1, keepdims=True)
        joint = m if joint is None else tf.matmul(m, joint)
    return joint[:, 0, prefix:]


def gae(matrices, prefix: int = 1):
    """Chefer et al.'s self-attention rule ``R <- R + M_i R`` from ``R = I``: the class token's row at the
    patch tokens, (N, T - prefix)."""
    relevance = tf.eye(tf.shape(matrices[0])[-1], batch_shape=tf.shape(matrices[0])[:1], dtype=matrices[0].dtype)
    for m in matrices:
        relevance = relevance + tf.matmul(m, relevance)
    return relevance[:, 0, prefix:]


class AttentionMethod(Method):
    """A map read from a ViT's attention (and its gradients) in one forward (and backward) pass per chunk.

    Subclasses implement :meth:`token_map` (traced once per model): (rows, gh*gw) values at the patch
    tokens. Output: (N, H, W, 1), the patch grid resized bilinearly to the input.
    """
    architecture = "vit"

    def token_map(self, chain, x, targets):
        raise NotImplementedError

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        chain = transformer_chain(evaluator, self.name)
        fn = chain.function(f"{self.name}{sorted(self.options.items())}", lambda: graph_function(
            lambda x, t: self.token_map(chain, x, t),
            input_signature=[input_spec(chain.stem), tf.TensorSpec([None], tf.int32)]))
        x, t = as_rows(images, targets)
        n = rows(x)
        with progress_bar(count(n, evaluator.batch_size) if tf.executing_eagerly() else 0, self.name, progress) as bar:
            (maps,) = chunk_map(lambda x, t: (fn(x, t),), [tf.float32], n, evaluator.batch_size, x, t, bar=bar)
        return finish(token_maps_to_images(chain, maps, x.shape[1:3]))


def token_maps_to_images(chain, maps, size):
    """(N, gh*gw) patch-token values -> float32 (N, H, W, 1) at the input size."""
    return chain.to_image(tf.cast(maps, tf.float32), size)
