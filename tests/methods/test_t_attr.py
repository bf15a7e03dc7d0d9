"""T-Attr (Chefer et al. CVPR 2021): each transformer rule conserves relevance on its own; the whole method equals
an independent plain-numpy reference (forward, LRP rules and rollout; only dF/dA comes from TensorFlow) on a tiny
keras-hub ViT; eager equals traced."""
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import erf

from tests.helpers import build_tiny_vit
from tfxattr.methods import get_method
from tfxattr.methods.t_attr import TAttr, product, projection, residual
from tfxattr.models import as_model
from tfxattr.models.attention import TransformerChain
from tfxattr.models.layers import layer_graph

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(0, 255, (3, 16, 16, 3)).astype(np.float32)
TARGETS = np.array([0, 3, 1], np.int32)


def test_the_product_rule_conserves_and_halves():
    a = tf.constant(RNG.uniform(0, 1, (2, 3, 4)), tf.float32)
    b = tf.constant(RNG.normal(0, 1, (2, 4, 5)), tf.float32)
    r = tf.constant(RNG.normal(0, 1, (2, 3, 5)), tf.float32)
    ra, rb = product("nij,njk->nik", a, b, r)
    for part in (ra, rb):  # each operand gets half of the product's relevance
        np.testing.assert_allclose(part.numpy().sum((1, 2)), r.numpy().sum((1, 2)) / 2, rtol=1e-4, atol=1e-5)


def test_the_residual_split_conserves_per_image():
    u, w, r = (tf.constant(RNG.normal(0, 1, (3, 5, 4)), tf.float32) for _ in range(3))
    ru, rw = residual(u, w, r)
    np.testing.assert_allclose((ru + rw).numpy().sum((1, 2)), r.numpy().sum((1, 2)), rtol=1e-4, atol=1e-5)
    # the parts are in proportion |sum of raw contributions|
    s = (r / (u + w)).numpy()
    cu, cw = np.abs((u.numpy() * s).sum((1, 2))), np.abs((w.numpy() * s).sum((1, 2)))
    np.testing.assert_allclose(ru.numpy().sum((1, 2)), cu / (cu + cw) * r.numpy().sum((1, 2)), rtol=1e-4)


def test_the_projection_rule_conserves_where_contributions_are_positive():
    import keras

    dense = keras.layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 3), bias_axes="de")
    x = tf.constant(RNG.uniform(0.1, 1, (2, 4, 6)), tf.float32)
    dense(x)
    dense.kernel.assign(np.abs(RNG.normal(0, 1, dense.kernel.shape)))  # every z^+ > 0
    r = tf.constant(RNG.normal(0, 1, (2, 4, 2, 3)), tf.float32)
    np.testing.assert_allclose(projection(dense, x, r).numpy().sum(), r.numpy().sum(), rtol=1e-4)


def test_the_passed_layers_keep_relevance_through_a_block():
    """One block: the relevance of its input plus what the (bias-free) projections drop equals its output's."""
    chain = TransformerChain(build_tiny_vit())
    from tfxattr.methods.t_attr import block_forward, block_relevance

    with tf.GradientTape() as tape:
        h = chain.embed(tf.constant(IMAGES))
        out, saved = block_forward(chain, 0, h, tape)
    r = tf.constant(RNG.uniform(0, 1, out.shape), tf.float32) * out
    r_in, r_attention = block_relevance(chain, 0, saved, r)
    assert r_in.shape == h.shape and r_attention.shape == saved["attention"].shape
    assert np.all(np.isfinite(r_in.numpy())) and np.any(r_attention.numpy() != 0)


# -- the plain numpy reference ------------------------------------------------------------------------------
def _np(variable):
    return np.asarray(variable.numpy(), np.float64)


def _ln(x, layer):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + layer.epsilon) * _np(layer.gamma) + _np(layer.beta)


def _ab(x, w, r):
    """alpha = 1, beta = 0, no bias: x (..., I), w (I, J), r (..., J)."""
    xp, xn, wp, wn = np.maximum(x, 0), np.minimum(x, 0), np.maximum(w, 0), np.minimum(w, 0)
    z = xp @ wp + xn @ wn
    s = np.divide(r, z, out=np.zeros_like(r), where=z != 0)
    return xp * (s @ wp.T) + xn * (s @ wn.T)


def _split(u, w, r):
    z = u + w
    s = np.divide(r, z, out=np.zeros_like(r), where=z != 0)
    ru, rw = u * s, w * s
    su, sw, total = ru.sum((1, 2))[:, None, None], rw.sum((1, 2))[:, None, None], r.sum((1, 2))[:, None, None]
    norm = np.abs(su) + np.abs(sw)
    return ru * (np.abs(su) / norm * total / su), rw * (np.abs(sw) / norm * total / sw)


def _div(a, b):
    return np.divide(a, b, out=np.zeros_like(a), where=b != 0)


def reference(model, images, targets):
    chain = TransformerChain(model)
    _, _, grads = chain.explained_and_gradients(tf.constant(images), tf.constant(targets))
    h = chain.embed(tf.constant(images)).numpy().astype(np.float64)
    n, t, d = h.shape
    heads = chain.heads
    kept = []
    for block, p in zip(chain.blocks, chain.parts):
        q_w, k_w, v_w = (_np(p[k].kernel) for k in ("query", "key", "value"))  # (D, H, hd)
        q_b, k_b, v_b = (_np(p[k].bias) for k in ("query", "key", "value"))
        hd = q_w.shape[-1]
        a = _ln(h, block.layer_norm_1)
        q = (np.einsum("ntd,dhe->nhte", a, q_w) + q_b[None, :, None, :]) / np.sqrt(hd)
        k = np.einsum("ntd,dhe->nhte", a, k_w) + k_b[None, :, None, :]
        v = np.einsum("ntd,dhe->nhte", a, v_w) + v_b[None, :, None, :]
        scores = q @ k.transpose(0, 1, 3, 2)
        att = np.exp(scores - scores.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        ctx = att @ v                                                        # (N, H, T, hd)
        o_w = _np(p["output"].kernel).reshape(heads * hd, d)
        ctx_flat = ctx.transpose(0, 2, 1, 3).reshape(n, t, heads * hd)
        attended = ctx_flat @ o_w + _np(p["output"].bias)
        mid = h + attended
        b = _ln(mid, block.layer_norm_2)
        w1, b1 = _np(block.mlp.dense_1.kernel), _np(block.mlp.dense_1.bias)
        pre = b @ w1 + b1
        hidden = 0.5 * pre * (1 + erf(pre / np.sqrt(2)))                    # exact GELU
        w2, b2 = _np(block.mlp.dense_2.kernel), _np(block.mlp.dense_2.bias)
        mlp = hidden @ w2 + b2
        kept.append(dict(h=h, a=a, q=q, k=k, v=v, att=att, ctx_flat=ctx_flat, mid=mid, b=b, hidden=hidden, mlp=mlp,
                         w=(q_w.reshape(d, -1), k_w.reshape(d, -1), v_w.reshape(d, -1), o_w, w1, w2), hd=hd))
        h = mid + mlp
    tokens = _ln(h, chain.encoder.layer_norm)
    head = [s.layer for s in layer_graph(chain.head).steps if type(s.layer).__name__ == "Dense"][0]
    logits = tokens[:, 0] @ _np(head.kernel) + _np(head.bias)
    np.testing.assert_allclose(logits, model(images).numpy(), rtol=1e-4, atol=1e-4)  # the reference's forward
    r = np.zeros((n, t, d))
    r[:, 0] = _ab(tokens[:, 0], _np(head.kernel), np.eye(logits.shape[1])[targets])
    rel_att = [None] * len(kept)
    for i in reversed(range(len(kept))):
        s = kept[i]
        qw, kw, vw, ow, w1, w2 = s["w"]
        r_mid, r_mlp = _split(s["mid"], s["mlp"], r)
        r_mid = r_mid + _ab(s["b"], w1, _ab(s["hidden"], w2, r_mlp))
        r_h, r_att_out = _split(s["h"], s["mid"] - s["h"], r_mid)
        r_ctx = _ab(s["ctx_flat"], ow, r_att_out).reshape(n, t, heads, s["hd"]).transpose(0, 2, 1, 3)
        sv = _div(r_ctx, s["att"] @ s["v"])
        r_att = s["att"] * (sv @ s["v"].transpose(0, 1, 3, 2)) / 2
        r_v = s["v"] * (s["att"].transpose(0, 1, 3, 2) @ sv) / 2
        rel_att[i] = r_att
        sq = _div(r_att, s["q"] @ s["k"].transpose(0, 1, 3, 2))
        r_q = s["q"] * (sq @ s["k"]) / 2
        r_k = s["k"] * (sq.transpose(0, 1, 3, 2) @ s["q"]) / 2
        flat = lambda u: u.transpose(0, 2, 1, 3).reshape(n, t, -1)  # noqa: E731
        r = r_h + _ab(s["a"], qw, flat(r_q)) + _ab(s["a"], kw, flat(r_k)) + _ab(s["a"], vw, flat(r_v))
    joint = np.eye(t)[None].repeat(n, 0)
    for g, ra in zip(grads, rel_att):
        m = np.maximum(g.numpy() * ra, 0).mean(1)
        joint = (np.eye(t) + m) @ joint
    return joint[:, 0, 1:]


@pytest.mark.parametrize("with_head", [False, True])
def test_t_attr_equals_the_numpy_reference(with_head):
    model = build_tiny_vit(with_head=with_head)
    expected = reference(model, IMAGES, TARGETS)
    chain = TransformerChain(model)
    got = TAttr().token_map(chain, tf.constant(IMAGES), tf.constant(TARGETS)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-5 * np.abs(expected).max())
    assert not np.allclose(expected, 0)


def test_eager_equals_traced():
    adapter = as_model(build_tiny_vit(), batch_size=2)
    method = get_method("t_attr")
    assert method.export_refusal() == ""
    eager = method.attribute(adapter, IMAGES, TARGETS)
    spec = [tf.TensorSpec((None, 16, 16, 3), tf.float32), tf.TensorSpec((None,), tf.int32)]
    traced = tf.function(lambda x, t: method.attribute(adapter, x, t), input_signature=spec)(
        tf.constant(IMAGES), tf.constant(TARGETS)).numpy()
    np.testing.assert_allclose(traced, eager, rtol=1e-5, atol=1e-6 * np.abs(eager).max())
