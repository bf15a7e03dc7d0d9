"""Real inputs, round 2 (issue 20), the model side: heads read from the selected output, FullGrad's implicit
biases, and clear refusals for inputs that used to fail deep inside Keras or TensorFlow."""
import warnings

import keras
import numpy as np
import pytest

import tfxattr

SIZE = 8
X = np.random.default_rng(0).uniform(0, 1, (2, SIZE, SIZE, 3)).astype(np.float32)


def _dict_model(probs_key, logits_key):
    """Two outputs from one trunk: a softmax Dense and a linear Dense, under the given dict keys (Keras orders
    its layers by the sorted keys, so which one is ``model.layers[-1]`` follows the key names)."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Flatten()(inp)
    probs = keras.layers.Dense(4, activation="softmax", name="probs")(h)
    logits = keras.layers.Dense(3, name="logits")(h)
    return keras.Model(inp, {probs_key: probs, logits_key: logits})


@pytest.mark.parametrize("probs_key,logits_key", [("a_probs", "b_logits"), ("b_probs", "a_logits")])
def test_the_head_is_read_from_the_selected_output(probs_key, logits_key):
    # before: the head came from model.layers[-1]; with the logits layer last, the softmax output picked by key
    # was softmaxed again (max probability 0.287 vs the model's 0.394), with no warning
    model = _dict_model(probs_key, logits_key)
    with pytest.warns(UserWarning, match="already ends in a softmax"):
        probs = tfxattr.as_model(model, output_index=probs_key, pixel_range=(0, 1))
    assert probs.head == "softmax"
    np.testing.assert_allclose(probs.probabilities(X), model(X)[probs_key].numpy(), rtol=1e-5, atol=1e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logits = tfxattr.as_model(model, output_index=logits_key, pixel_range=(0, 1))
    assert logits.head == "softmax_logits"
    np.testing.assert_allclose(logits.scores(X), model(X)[logits_key].numpy(), rtol=1e-5, atol=1e-6)


def test_a_model_ending_in_keras_ops_softmax_is_read_as_probabilities():
    # before: keras.ops.softmax is an operation, not a layer, so model.layers[-1] was the linear Dense and the
    # model was read as logits (probabilities 0.326 vs the model's 0.534, no warning); the probe never ran
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(inp, keras.ops.softmax(keras.layers.Dense(4)(keras.layers.Flatten()(inp))))
    with pytest.warns(UserWarning, match="already ends in a softmax"):
        adapter = tfxattr.as_model(model, pixel_range=(0, 1))
    assert adapter.head == "softmax"
    np.testing.assert_allclose(adapter.probabilities(X), model(X).numpy(), rtol=1e-5, atol=1e-7)
    # an op the head reader does not know (softmax written out) is probed: rows sum to one, none negative
    z = keras.layers.Dense(4)(keras.layers.Flatten()(inp))
    written_out = keras.Model(inp, keras.ops.exp(z) / keras.ops.sum(keras.ops.exp(z), axis=-1, keepdims=True))
    with pytest.warns(UserWarning, match="already ends in a softmax"):
        assert tfxattr.as_model(written_out, pixel_range=(0, 1)).head == "softmax"
