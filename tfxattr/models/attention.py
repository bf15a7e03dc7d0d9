"""Attention access for keras-hub Vision Transformers: the model run block by block, with the attention
probabilities of every block exposed and replaceable.

A keras-hub ``ViTImageClassifier`` (or any Functional model around a ``ViTBackbone``: a Rescaling in
front, a custom head) is cut with :func:`~tfxattr.models.layers.split_model` at the patch embedding and
at the encoder: ``stem`` (pixels -> tokens), the encoder's blocks, ``head`` (encoder output -> logits).
The blocks are re-run from keras-hub's own layers (``keras_hub/src/models/vit/vit_layers.py``)::

    a = ln_1(h);  A = softmax(q(a) k(a)^T / sqrt(d))    (N, heads, T, T), per head
    h = h + dropout(out(A v(a)));  h = h + mlp(ln_2(h))

then the encoder's final LayerNorm and the head. The caller may replace ``A`` (IIA interpolates it).
Keras' own ``MultiHeadAttention`` computes the same attention through a fused
``ops.dot_product_attention``, so the unchanged forward equals the model's to float32 rounding
(``tests/models/test_attention.py``), not bit for bit. Dropout layers are identities at inference.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from . import compat
from .layers import keras_model_of, layer_graph, model_cache, split_model
from .objective import Objective

# encoder layers whose blocks tfxattr can re-run (class name -> block class name)
ENCODERS = {"ViTEncoder": "ViTEncoderBlock"}
BLOCK_NAMES = ("last_block", "penultimate_block")  # blocks counted from the end: -1, -2


class TransformerChain:
    """Pixels -> ``preprocess`` -> ``stem`` -> blocks (attention exposed) -> final norm -> ``head`` -> f_c.

    ``prefix``: tokens before the patch tokens (1: the class token); ``grid``: the patch grid (gh, gw).
    """

    def __init__(self, model, preprocess=None, objective: Objective = Objective()):
        graph = layer_graph(model)
        found = [(s.path, s) for s in graph.steps if s.layer is not None and type(s.layer).__name__ in ENCODERS]
        if len(found) != 1:
            what = "no" if not found else f"{len(found)}"
            raise ValueError(f"model {model.name!r} has {what} Vision Transformer encoder ({', '.join(ENCODERS)}); "
                             "attention methods explain keras-hub ViTs (ViTImageClassifier, or a ViTBackbone with "
                             "a head). Use a gradient method such as 'ig' for other models.")
        path, step = found[0]
        self.encoder = step.layer
        embedding = graph.steps[graph.producer[step.inputs[0]]].path
        self.stem, middle, self.head = split_model(model, [embedding, path])
        self.blocks = list(self.encoder.encoder_layers)
        if any(type(b).__name__ != ENCODERS[type(self.encoder).__name__] for b in self.blocks):
            kinds = sorted({type(b).__name__ for b in self.blocks})
            raise ValueError(f"encoder {path!r}: unexpected block types {kinds}")
        self.parts = [compat.attention_parts(b.mha) for b in self.blocks]
        self.heads = int(self.blocks[0].num_heads)
        tokens = int(self.stem.outputs[0].shape[1])
        embed = graph.layers[embedding]
        self.grid = tuple(int(s) // int(p) for s, p in zip(embed.image_size, embed.patch_size))
        self.prefix = tokens - self.grid[0] * self.grid[1]
        if self.prefix != 1:
            raise ValueError(f"model {model.name!r}: attention rollout reads the class token's row; this ViT has "
                             f"{self.prefix} tokens before its {self.grid} patch grid (use_class_token=False?)")
        self.tokens = tokens
        self.preprocess = preprocess
        self.objective = objective
        self.functions: Dict[str, Callable] = {}  # tf.functions built by the methods, traced once

    @property
    def depth(self) -> int:
        return len(self.blocks)

    def block_index(self, name) -> int:
        """0-based index of ``name``: "last_block", "penultimate_block" or an int (negative from the end)."""
        if isinstance(name, str) and name in BLOCK_NAMES:
            name = -1 - BLOCK_NAMES.index(name)
        if isinstance(name, bool) or not isinstance(name, (int, np.integer)) or not -self.depth <= name < self.depth:
            raise ValueError(f"block must be 'last_block', 'penultimate_block' or an int in [-{self.depth}, "
                             f"{self.depth}) for this {self.depth}-block ViT, got {name!r}")
        return int(name) % self.depth

    # -- the forward pass ---------------------------------------------------------------------------
    def embed(self, x):
        """Pixels (N, H, W, C) -> tokens (N, T, D)."""
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.stem(x, training=False)

    def attention(self, i: int, h):
        """``(A, values)`` of block ``i`` for its input tokens ``h``: A (N, heads, T, T) after the softmax."""
        p = self.parts[i]
        a = self.blocks[i].layer_norm_1(h)
        query = p["query"](a) * tf.cast(p["scale"], h.dtype)
        scores = tf.einsum(p["scores"], p["key"](a), query)
        return p["softmax"](scores), p["value"](a)

    def finish(self, i: int, h, attention, values):
        """The rest of block ``i`` given (possibly replaced) ``attention``: its output tokens."""
        block = self.blocks[i]
        h = h + self.parts[i]["output"](tf.einsum(self.parts[i]["combine"], attention, values))
        return h + block.mlp(block.layer_norm_2(h))

    def run(self, x, replace: Optional[Callable] = None, tape: Optional[tf.GradientTape] = None):
        """``(raw output, [A_0 .. A_{L-1}])`` for pixels ``x``. ``replace(i, A)`` returns the attention block
        ``i`` continues with (default: ``A``); the returned list holds what each block used, watched by
        ``tape`` when given (so ``tape.gradient(f, attentions)`` is df/dA of every block)."""
        h = self.embed(x)
        used = []
        for i in range(self.depth):
            a, values = self.attention(i, h)
            if replace is not None:
                a = replace(i, a)
            if tape is not None:
                tape.watch(a)
            used.append(a)
            h = self.finish(i, h, a, values)
        return self.head(self.encoder.layer_norm(h), training=False), used

    def explained_and_gradients(self, x, targets, replace=None):
        """``(f_c (N,), [A_i], [df_c/dA_i])`` with ``A_i`` the attention block i used."""
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            raw, used = self.run(x, replace, tape)
            f = self.objective.explained(raw, targets)
        return f, used, tape.gradient(f, used)

    def to_image(self, token_map, size: Sequence[int]):
        """Patch-token values (N, gh*gw) -> (N, H, W, 1), resized bilinearly to ``size``."""
        grid = tf.reshape(token_map, (-1, self.grid[0], self.grid[1], 1))
        return tf.image.resize(grid, size, method="bilinear")

    def function(self, key: str, build: Callable) -> Callable:
        if key not in self.functions:
            self.functions[key] = compat.traced_per_model(build())
        return self.functions[key]


def has_vit_encoder(model) -> bool:
    """True when a layer of ``model`` (nested models and layers included) is a ViT encoder; reads the layer
    lists only (no graph flattening, no call), so it also answers for subclassed models."""
    seen, stack = set(), [model]
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if type(layer).__name__ in ENCODERS:
            return True
        stack.extend(getattr(layer, "layers", None) or [])
    return False


def is_transformer(model) -> bool:
    """True when ``model`` holds exactly one encoder tfxattr can re-run block by block."""
    try:
        graph = layer_graph(model)
    except (TypeError, ValueError):
        return False
    return sum(s.layer is not None and type(s.layer).__name__ in ENCODERS for s in graph.steps) == 1


def transformer_chain(evaluator, method: str) -> TransformerChain:
    """The (cached) :class:`TransformerChain` of ``evaluator``'s Keras model."""
    model = keras_model_of(evaluator, method)
    key = ("transformer", evaluator.preprocess, evaluator.objective)
    per_model = model_cache(model).setdefault("chains", {})
    if key not in per_model:
        per_model[key] = TransformerChain(model, evaluator.preprocess, evaluator.objective)
    return per_model[key]


def attention_maps(model, x, preprocess=None) -> List[np.ndarray]:
    """The attention probabilities (N, heads, T, T) of every block of a keras-hub ViT for inputs ``x``."""
    chain = TransformerChain(model, preprocess)
    return [a.numpy() for a in chain.run(tf.convert_to_tensor(x, tf.float32))[1]]
