"""The one channel reduction (tfxattr.reduction): a single-channel map stays signed, several channels sum |a|,
named reductions apply as named, numpy and tf (eager and inside a tf.function) agree, and every door uses it."""
import numpy as np
import pytest
import tensorflow as tf

import tfxattr
from tfxattr import visualize
from tfxattr.reduction import CHANNEL_REDUCTIONS, reduce_channels, resolve_reduction

RNG = np.random.default_rng(0)
MULTI = RNG.normal(size=(2, 5, 4, 3)).astype(np.float32)
SINGLE = RNG.normal(size=(2, 5, 4, 1)).astype(np.float32)
NAMED = {"sum_abs": lambda a: np.abs(a).sum(-1), "abs_sum": lambda a: np.abs(a.sum(-1)), "sum": lambda a: a.sum(-1),
         "positive": lambda a: np.maximum(a.sum(-1), 0), "max_abs": lambda a: np.abs(a).max(-1)}


def test_a_single_channel_map_stays_signed_and_several_channels_sum_their_magnitudes():
    signed = reduce_channels(SINGLE)
    np.testing.assert_array_equal(signed, SINGLE[..., 0])
    assert signed.min() < 0 and signed.dtype == np.float32
    np.testing.assert_allclose(reduce_channels(MULTI), np.abs(MULTI).sum(-1), rtol=1e-6)
    assert resolve_reduction("auto", 1) == "sum" and resolve_reduction("auto", 3) == "sum_abs"
    np.testing.assert_array_equal(reduce_channels(SINGLE[0]), SINGLE[0, ..., 0])  # one (H, W, C) attribution


@pytest.mark.parametrize("name", sorted(NAMED))
@pytest.mark.parametrize("attribution", [MULTI, SINGLE], ids=["multi", "single"])
def test_named_reductions_apply_as_named(name, attribution):
    np.testing.assert_allclose(reduce_channels(attribution, name), NAMED[name](attribution), rtol=1e-6)


@pytest.mark.parametrize("name", CHANNEL_REDUCTIONS)
@pytest.mark.parametrize("attribution", [MULTI, SINGLE], ids=["multi", "single"])
def test_numpy_equals_tf_eager_and_in_a_tf_function(name, attribution):
    want = reduce_channels(attribution, name)
    eager = reduce_channels(tf.constant(attribution), name)
    assert tf.is_tensor(eager)
    np.testing.assert_allclose(eager.numpy(), want, rtol=1e-6)
    static = tf.function(lambda a: reduce_channels(a, name),
                         input_signature=[tf.TensorSpec((None, None, None, attribution.shape[-1]), tf.float32)])
    np.testing.assert_allclose(static(attribution).numpy(), want, rtol=1e-6)
    dynamic = tf.function(lambda a: reduce_channels(a, name),  # the channel count known only at run time
                          input_signature=[tf.TensorSpec((None, None, None, None), tf.float32)])
    np.testing.assert_allclose(dynamic(attribution).numpy(), want, rtol=1e-6)


def test_a_typo_names_the_closest_reduction():
    with pytest.raises(ValueError, match="did you mean 'sum_abs'"):
        reduce_channels(MULTI, "sum_ab")
    with pytest.raises(ValueError, match="did you mean 'sum_abs'"):
        reduce_channels(tf.constant(MULTI), "sum_ab")
    with pytest.raises(ValueError, match="did you mean 'auto'"):
        tfxattr.Explanation(attribution=MULTI, targets=np.array([0, 1]), method="ig", reduce="autp")


def test_every_door_reduces_the_same_way():
    """Explanation.map, the metrics given an (N,H,W,1) array, and the figures' heatmap: one reduction."""
    from tfxattr.metrics.inputs import check_maps

    exp = tfxattr.Explanation(attribution=SINGLE, targets=np.array([0, 1]), method="gradcam",
                              images=np.zeros((2, 5, 4, 3), np.float32))
    np.testing.assert_array_equal(exp.map, SINGLE[..., 0])
    np.testing.assert_array_equal(check_maps(SINGLE, (2, 5, 4, 3)), SINGLE[..., 0])
    np.testing.assert_array_equal(check_maps(MULTI, (2, 5, 4, 3)), reduce_channels(MULTI))
    assert visualize.reduce_channels is reduce_channels
    fig = exp.plot(1)
    heat = next(ax for ax in fig.axes if ax.get_label() == "heatmap").images[0]
    np.testing.assert_array_equal(np.asarray(heat.get_array()), SINGLE[1, ..., 0])
