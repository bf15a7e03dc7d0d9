"""Attention access for keras-hub ViTs (tfxattr/models/attention.py) and the attention methods' rules."""
import numpy as np
import pytest
import tensorflow as tf

import tfxattr
from tfxattr.models.attention import TransformerChain, attention_maps, is_transformer

FLOAT32_RTOL = 1e-5  # Keras runs the same attention through a fused dot_product_attention: rounding only


@pytest.fixture(scope="module", params=["classifier", "backbone_with_head"])
def vit(request):
    from tests.helpers import build_tiny_vit

    return build_tiny_vit(with_head=request.param == "backbone_with_head")


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).uniform(0, 255, (4, 16, 16, 3)).astype(np.float32)


def test_unchanged_attention_reproduces_the_logits(vit, images):
    """alpha = 1 (the attention replaced by itself) is the model's forward pass, to float32 rounding."""
    chain = TransformerChain(vit)
    assert chain.depth == 2 and chain.grid == (4, 4) and chain.prefix == 1 and chain.heads == 2
    x = tf.constant(images)
    expected = vit(x, training=False).numpy()
    hooked, used = chain.run(x, replace=lambda i, a: 1.0 * a)
    np.testing.assert_allclose(hooked.numpy(), expected, rtol=FLOAT32_RTOL, atol=FLOAT32_RTOL * np.abs(expected).max())
    assert [a.shape for a in used] == [(4, 2, 17, 17)] * 2
    np.testing.assert_allclose(tf.reduce_sum(used[0], -1).numpy(), 1.0, rtol=1e-5)  # rows of a softmax


def test_replacing_the_attention_changes_the_output(vit, images):
    chain = TransformerChain(vit)
    x = tf.constant(images)
    half = chain.run(x, replace=lambda i, a: 0.5 * a if i == 1 else a)[0].numpy()
    zero = chain.run(x, replace=lambda i, a: 0.0 * a if i == 1 else a)[0].numpy()
    full = chain.run(x)[0].numpy()
    assert not np.allclose(half, full) and not np.allclose(zero, half)


def _independent_maps(model, x):
    """Each block's attention scores through keras' MultiHeadAttention(return_attention_scores=True)
    and the block's own call, then Abnar & Zuidema's rollout (0.5 A + 0.5 I, product) in NumPy."""
    backbone = next(layer for layer in model.layers if type(layer).__name__ == "ViTBackbone")
    rescale = [layer for layer in model.layers if type(layer).__name__ == "Rescaling"]
    h = rescale[0](x) if rescale else x
    h = backbone.get_layer("vit_patching_and_embedding")(h)
    joint = None
    for block in backbone.get_layer("vit_encoder").encoder_layers:
        a = block.layer_norm_1(h)
        _, scores = block.mha(a, a, return_attention_scores=True)
        m = 0.5 * np.asarray(scores).mean(1) + 0.5 * np.eye(scores.shape[-1])
        joint = m if joint is None else np.einsum("nij,njk->nik", m, joint)
        h = block(h)
    return joint[:, 0, 1:]


def test_attention_rollout_equals_an_independent_implementation():
    """With one-pixel patches the patch grid is the image: no resize between the rollout and the map."""
    from tests.helpers import build_tiny_vit

    model = build_tiny_vit(size=5, patch=1, with_head=True)
    x = np.random.default_rng(2).uniform(0, 255, (3, 5, 5, 3)).astype(np.float32)
    got = tfxattr.explain(model, x, "attention_rollout").attribution[..., 0]
    np.testing.assert_allclose(got.reshape(3, -1), _independent_maps(model, x), rtol=1e-5, atol=1e-7)
    scores = attention_maps(model, x)
    assert len(scores) == 2 and scores[0].shape == (3, 2, 26, 26)


def test_iia_with_one_step_on_the_last_block_is_gradient_rollout(vit, images):
    """a_L = 1 is the only step: the integrand at the unchanged network."""
    one = tfxattr.explain(vit, images, "iia_vit", steps=1, targets=[0, 1, 2, 3]).attribution
    gr = tfxattr.explain(vit, images, "gradient_rollout", targets=[0, 1, 2, 3]).attribution
    np.testing.assert_allclose(one, gr, rtol=1e-5, atol=1e-7)


def test_iia_memory_is_bounded_by_batch_size_not_by_the_result(vit, images):
    """IIA2 with 3 steps: 9 rows per image; chunks of 2 rows give the same map as one chunk."""
    small = tfxattr.explain(vit, images[:2], "iia2_vit", steps=3, batch_size=2, targets=[1, 2]).attribution
    big = tfxattr.explain(vit, images[:2], "iia2_vit", steps=3, batch_size=64, targets=[1, 2]).attribution
    np.testing.assert_allclose(small, big, rtol=1e-5, atol=1e-6 * np.abs(big).max())


def test_iia_integrate_matrices_is_one_rollout_of_the_mean(vit, images):
    """The authors' order (mean of the gradient-weighted matrices, then one rollout) differs from the
    mean of the rollouts, and both are non-negative."""
    a = tfxattr.explain(vit, images, "iia_vit", steps=4, targets=[0, 1, 2, 3]).attribution
    b = tfxattr.explain(vit, images, "iia_vit", steps=4, integrate="matrices", targets=[0, 1, 2, 3]).attribution
    assert np.all(a >= 0) and np.all(b >= 0) and not np.allclose(a, b)


def test_attention_methods_refuse_other_models_and_bad_layers(vit, images):
    from tests.helpers import build_tiny_cnn

    assert is_transformer(vit) and not is_transformer(build_tiny_cnn())
    with pytest.raises(ValueError, match="Vision Transformer encoder"):
        tfxattr.explain(build_tiny_cnn(), images, "gae")
    with pytest.raises(ValueError, match="same block twice"):
        tfxattr.explain(vit, images, "iia_vit", layers=[-1, "last_block"])
    with pytest.raises(ValueError, match="block must be"):
        tfxattr.explain(vit, images, "iia_vit", layers=[5])
    with pytest.raises(ValueError, match="layers must be"):
        tfxattr.explain(vit, images, "iia_vit", layers=["last_blok"])
    with pytest.raises(ValueError, match="integrate must be one of"):
        tfxattr.explain(vit, images, "iia_vit", integrate="matrix")
