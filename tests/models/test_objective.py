"""One Objective says which scalar is explained, for the adapter and for the layer chain alike."""
import numpy as np
import pytest
import tensorflow as tf

import tfxattr
from tfxattr.models.layers import layer_chain
from tfxattr.models.objective import Objective


def test_scores_and_probabilities():
    raw = tf.constant([[1.0, 2.0, 0.5]])
    soft = tf.nn.softmax(raw).numpy()
    np.testing.assert_allclose(Objective("logit").scores(raw), raw)
    np.testing.assert_allclose(Objective("probability").scores(raw), soft, rtol=1e-6)
    np.testing.assert_allclose(Objective("logit").probabilities(raw), soft, rtol=1e-6)
    # a head that already ends in a softmax is never softmaxed twice
    np.testing.assert_allclose(Objective("probability", ends_in_softmax=True).scores(tf.constant(soft)), soft)
    np.testing.assert_allclose(Objective("probability").explained(raw, tf.constant([1])), soft[:, 1], rtol=1e-6)
    with pytest.raises(ValueError, match="output"):
        Objective("logits")


@pytest.mark.parametrize("output", ["logit", "probability"])
def test_adapter_and_layer_chain_explain_the_same_scalar(tiny_model, tiny_images, output):
    adapter = tfxattr.as_model(tiny_model, output=output)
    chain = layer_chain(adapter, ["conv2"], "test")
    targets = tf.constant([0, 2, 4])
    via_chain = chain.explained(chain.stage(0, tf.constant(tiny_images)), targets).numpy()
    np.testing.assert_allclose(via_chain, adapter.values(tiny_images, targets).numpy(), rtol=1e-5, atol=1e-6)
    assert chain.objective is adapter.objective
