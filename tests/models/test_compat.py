"""Every Keras private attribute tfxattr reads (tfxattr/models/compat.py), checked on the models layer
splitting meets: fails loudly when a Keras upgrade changes one of them."""
import keras
import pytest

from tfxattr.models import compat


def _functional():
    inp = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inp)
    skip = keras.layers.Conv2D(4, 1, name="skip")(inp)
    out = keras.layers.Add(name="add")([h, skip])
    return keras.Model(inp, out, name="f")


def test_keras_version_was_verified():
    assert compat.keras_version() in compat.VERIFIED_KERAS, (
        f"Keras {keras.__version__} is not among the versions tfxattr/models/compat.py was checked against "
        f"{compat.VERIFIED_KERAS}: run tests/models/test_compat.py and tests/models/test_layers.py, then add it")


def test_nodes_by_depth_lists_every_call_of_a_functional_model():
    model = _functional()
    assert compat.has_graph(model)
    ops = {node.operation.name for nodes in compat.nodes_by_depth(model).values() for node in nodes
           if node.operation is not None and not node.is_input}
    assert {"c1", "skip", "add"} <= ops


def test_node_arguments_are_refilled_with_other_tensors():
    model = _functional()
    add = next(node for nodes in compat.nodes_by_depth(model).values() for node in nodes
               if node.operation is not None and node.operation.name == "add")
    tensors = compat.node_tensors(add)
    assert len(tensors) == 2
    args, kwargs = compat.node_call(add, {id(t): i for i, t in enumerate(tensors)})
    assert args == ([0, 1],) and kwargs == {}


def test_sequential_exposes_its_functional_graph_once_built():
    seq = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d")])
    graph = compat.sequential_graph(seq)
    assert graph is not None and compat.has_graph(graph)
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    assert compat.sequential_graph(unbuilt) is None


def test_subclassed_models_have_no_graph():
    class Sub(keras.Model):
        def call(self, x):
            return x

    assert not compat.has_graph(Sub())


def test_producer_names_the_layer_or_op_behind_an_output():
    inp = keras.Input((8, 8, 3))
    z = keras.layers.Dense(4, name="d")(keras.layers.Flatten()(inp))
    model = keras.Model(inp, {"p": keras.ops.softmax(z), "z": z})
    ops = [(type(op).__name__, index) for op, index in map(compat.producer, model.outputs)]
    assert ops == [("Softmax", 0), ("Dense", 0)]  # outputs in sorted key order
    assert compat.producer(object()) is None


def test_traced_per_model_sets_tensorflows_own_flag():
    import tensorflow as tf

    fn = tf.function(lambda x: x + 1)
    assert fn._omit_frequent_tracing_warning is False  # the attribute TensorFlow reads before the warning
    assert compat.traced_per_model(fn) is fn and fn._omit_frequent_tracing_warning is True
    plain = object()
    assert compat.traced_per_model(plain) is plain


@pytest.mark.parametrize("attr", ["_nodes_by_depth", "_functional", "arguments", "_keras_history",
                                  "_omit_frequent_tracing_warning"])
def test_private_attributes_are_used_only_in_compat(attr):
    import pathlib
    import re

    pattern = re.compile(rf"""(\.|["']){attr}\b(?![_(])""")  # attribute access or getattr name, not a call
    root = pathlib.Path(compat.__file__).parents[1]
    users = [p.relative_to(root).as_posix() for p in root.rglob("*.py")
             if pattern.search(p.read_text()) and p.name != "compat.py"]
    assert users == [], f"{attr} used outside tfxattr/models/compat.py: {users}"


def test_attention_parts_recompute_multi_head_attention_scores():
    import numpy as np
    import tensorflow as tf

    mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 5, 6)), tf.float32)
    out, scores = mha(x, x, return_attention_scores=True)
    p = compat.attention_parts(mha)
    a = p["softmax"](tf.einsum(p["scores"], p["key"](x), p["query"](x) * p["scale"]))
    np.testing.assert_allclose(a.numpy(), scores.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(p["output"](tf.einsum(p["combine"], a, p["value"](x))).numpy(), out.numpy(),
                               rtol=1e-5, atol=1e-6)


def test_the_library_traces_without_autograph_and_a_users_callable_is_still_converted():
    """Our traced functions are TensorFlow ops already (graph_function: no AutoGraph); a user's plain Python model
    with tensor-dependent ``if`` / ``len`` runs as tf.function would run it, and its gradient is the branch's."""
    import numpy as np
    import tensorflow as tf

    import tfxattr

    def branchy(x):
        bright = tf.reduce_mean(x) > 100.0
        if bright:  # a Python `if` on a tensor: AutoGraph turns it into tf.cond
            out = tf.reduce_sum(2.0 * x, [1, 2, 3])
        else:
            out = tf.reduce_sum(x, [1, 2, 3])
        return tf.stack([out, tf.zeros(len(x))], -1)

    with pytest.raises((TypeError, tf.errors.OperatorNotAllowedInGraphError)):
        compat.graph_function(branchy)(tf.zeros((1, 4, 4, 3)))
    for level, slope in ((200.0, 2.0), (10.0, 1.0)):
        x = np.full((2, 4, 4, 3), level, np.float32)
        exp = tfxattr.explain(branchy, x, "gradient", targets=0, input_shape=(4, 4, 3), progress=False)
        np.testing.assert_allclose(exp.attribution, slope)
