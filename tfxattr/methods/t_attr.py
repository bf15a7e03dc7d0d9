r"""T-Attr: Transformer Interpretability Beyond Attention Visualization (Chefer, Gur, Wolf, CVPR 2021, Sec. 3,
Eq. 8-13; the authors' ``baselines/ViT/ViT_LRP.py`` and ``modules/layers_ours.py``), on keras-hub ViTs.

Relevance propagation from the explained class (``R = df_c/dlogits``: the one-hot vector, as the authors start)
through the head and the encoder, block by block, with their rules:

* every projection (q, k, v, the attention output, both MLP layers, the head): LRP alpha-beta with alpha = 1,
  beta = 0 and biases left out, ``R_i = sum_j (x^+_i w^+_ij + x^-_i w^-_ij) R_j / z^+_j``;
* the two products ``A . V`` and ``Q . K^T`` (bilinear): each operand ``u`` gets ``u * d<z, R/z>/du`` halved (Eq. 8-9:
  each of these already sums to the relevance of the product, so halving conserves it);
* each residual add ``z = u + w``: ``R_u = u d<z, R/z>/du``, then rescaled so that the two parts sum to
  ``|sum R_u| / (|sum R_u| + |sum R_w|) * sum R`` (Eq. 10-11, per image);
* LayerNorm, GELU, the softmax, dropout and the query's ``1/sqrt(d)`` scale: relevance passed through; the
  relevance of q, k and v is summed at the LayerNorm they all read.

Then, for each block ``b``, ``Abar_b = I + mean_h [dF/dA_b * R_{A_b}]^+`` with ``R_{A_b}`` the relevance of the
attention probabilities (the ``A`` operand of ``A . V``), and ``C = Abar_1 . Abar_2 ... Abar_B`` (later blocks on the
left, Eq. 13); the map is the class token's row of ``C`` at the patch tokens, resized to the image. As in the
paper and in the authors' ``relprop(method="grad")`` the rows are not normalised (their generator script's
``compute_rollout_attention`` normalises them, but ``generate_LRP`` calls the model's own, which does not).
"""
from __future__ import annotations

import tensorflow as tf

from ..models.layers import layer_graph
from .lrp_rules import linear_rule
from .lrp_walk import backward, forward, plan_of
from .rollout import AttentionMethod, gae

# alpha-beta with alpha = 1, beta = 0, biases left out: the authors' rule for every linear layer
PROJECTION_RULE = "alpha1_beta0"


def projection(layer, x, r):
    """Relevance of the input ``x`` of a Dense or EinsumDense ``layer`` (alpha = 1, beta = 0, no bias)."""
    kernel = tf.cast(layer.kernel, tf.float32)
    if type(layer).__name__ == "EinsumDense":
        fn = lambda v, w: tf.einsum(layer.equation, v, w)  # noqa: E731
    else:
        fn = lambda v, w: tf.tensordot(v, w, 1)  # noqa: E731
    return linear_rule(PROJECTION_RULE, fn, x, kernel, 0.0, r)


def product(equation, a, b, r):
    """The two-operand rule for ``z = einsum(equation, a, b)``: ``(R_a, R_b)``, each ``u d<z, R/z>/du`` halved."""
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(a)
        tape.watch(b)
        z = tf.einsum(equation, a, b)
    ga, gb = tape.gradient(z, [a, b], output_gradients=tf.stop_gradient(tf.math.divide_no_nan(r, z)))
    return a * ga / 2.0, b * gb / 2.0


def residual(u, w, r):
    """The normalised split of ``z = u + w``: ``(R_u, R_w)`` in proportion to the contributions, rescaled per image
    so that they sum to ``|sum R_u| / (|sum R_u| + |sum R_w|) * sum R`` and the same for ``w``."""
    s = tf.math.divide_no_nan(r, u + w)
    ru, rw = u * s, w * s
    axes = list(range(1, r.shape.rank))
    su, sw = (tf.reduce_sum(t, axis=axes, keepdims=True) for t in (ru, rw))
    total = tf.reduce_sum(r, axis=axes, keepdims=True)
    norm = tf.abs(su) + tf.abs(sw)
    return (ru * tf.math.divide_no_nan(tf.math.divide_no_nan(tf.abs(su), norm) * total, su),
            rw * tf.math.divide_no_nan(tf.math.divide_no_nan(tf.abs(sw), norm) * total, sw))


def block_forward(chain, i, h, tape):
    """Block ``i`` on tokens ``h`` with every intermediate kept (``tape`` watches the attention probabilities)."""
    block, p = chain.blocks[i], chain.parts[i]
    a = block.layer_norm_1(h)
    q = p["query"](a) * tf.cast(p["scale"], h.dtype)
    k, v = p["key"](a), p["value"](a)
    attention = p["softmax"](tf.einsum(p["scores"], k, q))
    tape.watch(attention)
    context = tf.einsum(p["combine"], attention, v)
    attended = p["output"](context)
    mid = h + attended
    b = block.layer_norm_2(mid)
    hidden = block.mlp.dense_1(b)
    out = mid + block.mlp.dense_2(hidden)
    return out, dict(h=h, a=a, q=q, k=k, v=v, attention=attention, context=context, attended=attended, mid=mid,
                     b=b, hidden=hidden, mlp=out - mid)


def block_relevance(chain, i, saved, r):
    """``(R of the block's input tokens, R of its attention probabilities)`` from ``r``, the output's relevance."""
    block, p = chain.blocks[i], chain.parts[i]
    r_mid, r_mlp = residual(saved["mid"], saved["mlp"], r)
    r_hidden = projection(block.mlp.dense_2, saved["hidden"], r_mlp)   # GELU of dense_1: passed through
    r_mid = r_mid + projection(block.mlp.dense_1, saved["b"], r_hidden)  # LayerNorm 2 passed through
    r_h, r_attended = residual(saved["h"], saved["attended"], r_mid)
    r_context = projection(p["output"], saved["context"], r_attended)
    r_attention, r_v = product(p["combine"], saved["attention"], saved["v"], r_context)
    r_k, r_q = product(p["scores"], saved["k"], saved["q"], r_attention)  # the softmax and the scale passed through
    r_a = projection(p["query"], saved["a"], r_q) + projection(p["key"], saved["a"], r_k) \
        + projection(p["value"], saved["a"], r_v)
    return r_h + r_a, r_attention  # LayerNorm 1 passed through, q/k/v branches summed


def head_relevance(chain, tokens, r_logits):
    """Relevance of the final LayerNorm's output tokens (the head's input) from that of the logits."""
    plan = plan_of(chain.head)
    values, linear_inputs, _ = forward(plan, tokens)
    rel = {layer_graph(chain.head).sink: r_logits}

    def linear_backward(i, j, stage, x, r):  # the head's Dense layers: the same projection rule
        return linear_rule(PROJECTION_RULE, stage.fn, x, stage.kernel(), 0.0, r)
    return backward(plan, values, linear_inputs, rel, linear_backward)


def attention_relevance(chain, x, targets):
    """``(f_c, [A_b], [dF/dA_b], [R_{A_b}])`` for every block ``b`` of the ViT in ``chain``."""
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        h = chain.embed(x)
        saved = []
        for i in range(chain.depth):
            h, kept = block_forward(chain, i, h, tape)
            saved.append(kept)
        tokens = chain.encoder.layer_norm(h)
        logits = tf.cast(chain.head(tokens, training=False), tf.float32)
        tape.watch(logits)
        f = chain.objective.explained(logits, targets)
    attentions = [s["attention"] for s in saved]
    grads = tape.gradient(f, attentions + [logits])
    r = head_relevance(chain, tokens, grads[-1])  # the final LayerNorm passed through
    relevances = [None] * chain.depth
    for i in reversed(range(chain.depth)):
        r, relevances[i] = block_relevance(chain, i, saved[i], r)
    return f, attentions, grads[:-1], relevances


class TAttr(AttentionMethod):
    """Chefer et al. 2021: rollout of ``I + mean_h [dF/dA * R_A]^+`` with ``R_A`` from their LRP rules."""
    name = "t_attr"
    summary = "T-Attr: LRP relevance x gradient of attention, rolled out (Chefer et al. CVPR 2021) on keras-hub ViTs"

    def token_map(self, chain, x, targets):
        _, _, gradients, relevances = attention_relevance(chain, x, targets)
        return gae([tf.reduce_mean(tf.nn.relu(g * r), axis=1) for g, r in zip(gradients, relevances)], chain.prefix)

