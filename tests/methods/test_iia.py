"""IIA (Barkan et al., ICCV 2023): Eq. 10 against a loop-by-loop reference, the IG reduction of Sec. 3.3,
the Sec. 3.5 batching, per-image targets, errors. (IIA2/IIA3 on the eleven applications: models/test_layers.py.)"""
import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_apps
import tfxattr
from tests.helpers import build_chain_cnn
from tfxattr.methods.iia import IIA


@pytest.fixture(scope="module")
def chain():
    """c1 16x16, c2 8x8, c3 4x4 (the last block)."""
    return build_chain_cnn(((6, "tanh"), (6, "tanh"), (8, "tanh")))


X = np.random.default_rng(0).uniform(0, 255, (3, 16, 16, 3)).astype(np.float32)


def reference_iia(model, x, target, reps, interpolated, n, rule="right", integrand="activation_gradient",
                  reference="min", baseline=0.0):
    """Eq. 10 with explicit nested loops over a chain model's layers (independent of tfxattr.layers)."""
    layers = model.layers[1:]
    names = [layer.name for layer in layers]

    def run(h, start, end):
        i0 = 0 if start == "input" else names.index(start) + 1
        i1 = len(names) if end is None else names.index(end) + 1
        for layer in layers[i0:i1]:
            h = layer(h)
        return h

    alphas = (np.arange(n) + {"left": 0.0, "midpoint": 0.5, "right": 1.0}[rule]) / n

    def level(j, u):
        if reps[j] == "input":
            r = tf.fill(u.shape, baseline)
        elif reference == "min":
            r = tf.reduce_min(u, axis=[1, 2], keepdims=True) + 0 * u
        else:
            r = 0 * u
        total = 0.0
        for a in (alphas if interpolated[j] else [1.0]):
            v = r + float(a) * (u - r)
            if j == len(reps) - 1:
                with tf.GradientTape() as tape:
                    tape.watch(v)
                    f = run(v, reps[j], None)[0, target]
                g = tape.gradient(f, v)
                q = v * g if integrand == "activation_gradient" else g
                total += tf.reduce_mean(tf.cast((u - r) * q, tf.float64), axis=-1)
            else:
                total += level(j + 1, run(v, reps[j], reps[j + 1]))
        return total

    x = tf.constant(x[None])
    u0 = x if reps[0] == "input" else run(x, "input", reps[0])
    m = level(0, u0) / float(n) ** sum(interpolated)
    return tf.image.resize(m[..., None], x.shape[1:3], method="bilinear").numpy()[0]


def _close(a, b, tol=1e-5):
    scale = np.abs(b).max()
    assert scale > 0
    assert np.abs(a - b).max() <= tol * scale, (np.abs(a - b).max(), scale)


# --------------------------------------------------------------------------- Eq. 10
@pytest.mark.parametrize("case", [
    dict(method="iia2", reps=["input", "c3"], interp=[True, True]),
    dict(method="iia3", reps=["input", "c2", "c3"], interp=[True, True, True]),
    dict(method="iia", layers=["input"], integrand_layer="c3", reps=["input", "c3"], interp=[True, False]),  # IMG
    dict(method="iia", layers=["c3"], reps=["c3"], interp=[True]),  # ACT
    dict(method="iia", layers=["input", "penultimate_block"], reps=["input", "c2"], interp=[True, True]),  # L-1
    dict(method="iia2", rule="left", reference="zero", reps=["input", "c3"], interp=[True, True]),
    dict(method="iia2", rule="midpoint", baseline="white", reps=["input", "c3"], interp=[True, True]),
])
def test_iia_matches_nested_loop_reference(chain, case):
    case = dict(case)
    reps, interp = case.pop("reps"), case.pop("interp")
    method = case.pop("method")
    n = 3
    e = tfxattr.explain(chain, X, method, targets=[0, 1, 3], steps=n, batch_size=7, **case)
    assert e.attribution.shape == (3, 16, 16, 1) and e.map.shape == (3, 16, 16)
    base = 255.0 if case.get("baseline") == "white" else 0.0
    for i, t in enumerate([0, 1, 3]):
        ref = reference_iia(chain, X[i], t, reps, interp, n, rule=case.get("rule", "right"),
                            reference=case.get("reference", "min"), baseline=base)
        _close(e.attribution[i], ref)


def test_presets_resolve_the_blocks(chain):
    assert IIA().plan(tfxattr.as_model(chain)) == (["input", "c3"], [True, True])
    iia3 = tfxattr.methods.get_method("iia3")
    assert iia3.plan(tfxattr.as_model(chain)) == (["input", "c2", "c3"], [True, True, True])


@pytest.mark.parametrize("rule", ["left", "right"])
def test_reduces_to_ig_with_only_the_input_interpolated(tiny_model, tiny_images, rule):
    """Sec. 3.3: b = [1, 0, ..., 0], l = 0, q = df/dv  ->  Eq. 3-4 (IG), channel mean."""
    ig = tfxattr.explain(tiny_model, tiny_images, "ig", targets=[0, 1, 2], steps=8, rule=rule).attribution
    iia = tfxattr.explain(tiny_model, tiny_images, "iia", targets=[0, 1, 2], steps=8, rule=rule, layers=["input"],
                          integrand="gradient").attribution
    _close(iia[..., 0], ig.mean(-1))


# --------------------------------------------------------------------------- batching (Sec. 3.5)
class _Counter(keras.layers.Layer):
    """Identity that counts the calls and the items passing through it (in graph mode too)."""

    def build(self, shape):
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False, name="calls")
        self.items = self.add_weight(shape=(), initializer="zeros", trainable=False, name="items")

    def call(self, x):
        self.calls.assign_add(1.0)
        self.items.assign_add(tf.cast(tf.shape(x)[0], tf.float32))
        return x


def test_iia2_costs_n_stem_items_and_n2_head_items_in_chunks():
    inp = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="tanh", name="c1")(inp)
    h = _Counter(name="stem_count")(h)
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="tanh", name="c2")(h)
    h = _Counter(name="head_count")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inp, keras.layers.Dense(3)(h))
    adapter = tfxattr.as_model(model, batch_size=32)
    stem, head = model.get_layer("stem_count"), model.get_layer("head_count")
    for layer in (stem, head):
        layer.calls.assign(0.0)
        layer.items.assign(0.0)
    # the method alone (explain also predicts the images once, for the scores it reports)
    tfxattr.get_method("iia", layers=["input", "c2"], steps=10).attribute(adapter, X[:1], np.array([2], np.int32))
    assert (stem.items.numpy(), stem.calls.numpy()) == (10, 1)  # 10 input interpolants, one stem call
    assert (head.items.numpy(), head.calls.numpy()) == (100, 4)  # 100 head gradients in chunks 32+32+32+4


def test_per_image_targets_and_batch_size_do_not_change_results(chain):
    targets = [3, 0, 2]
    together = tfxattr.explain(chain, X, "iia3", targets=targets, steps=3, batch_size=32).attribution
    for bs in (1, 5):
        np.testing.assert_allclose(tfxattr.explain(chain, X, "iia3", targets=targets, steps=3, batch_size=bs)
                                   .attribution, together, rtol=1e-5, atol=1e-6 * np.abs(together).max())
    for i, t in enumerate(targets):
        single = tfxattr.explain(chain, X[i], "iia3", targets=t, steps=3).attribution
        np.testing.assert_allclose(single, together[i], rtol=1e-5, atol=1e-6 * np.abs(together).max())


def test_probability_output_is_explained(chain):
    """output="probability" on logits == the same model ending in a Softmax layer (nested, so split inside)."""
    prob = tfxattr.explain(chain, X[:2], "iia2", targets=[1, 2], steps=2, output="probability").attribution
    logit = tfxattr.explain(chain, X[:2], "iia2", targets=[1, 2], steps=2).attribution
    inp = keras.Input((16, 16, 3))
    soft = keras.Model(inp, keras.layers.Softmax()(chain(inp)))
    same = tfxattr.explain(soft, X[:2], "iia2", targets=[1, 2], steps=2, output="probability").attribution
    assert not np.allclose(logit, prob)
    _close(same, prob)


# --------------------------------------------------------------------------- errors
def test_errors_name_the_problem(chain):
    with pytest.raises(ValueError, match="steps"):
        IIA(steps=0)
    with pytest.raises(ValueError, match="rule"):
        IIA(rule="trapezoid")
    with pytest.raises(ValueError, match="layers"):
        IIA(layers=[])
    with pytest.raises(ValueError, match="\\(N, H, W, C\\) outputs; 'gap'"):
        tfxattr.explain(chain, X[:1], "iia", layers=["input", "gap"], steps=2)
    with pytest.raises(ValueError, match="integrand_layer 'c2' lies before"):
        tfxattr.explain(chain, X[:1], "iia", layers=["input", "c3"], integrand_layer="c2", steps=2)
    with pytest.raises(TypeError, match="needs a Keras model"):
        tfxattr.explain(tfxattr.as_model(lambda x: chain(x), input_shape=(16, 16, 3)), X[:1], "iia2", steps=2)


def test_residual_branch_layer_is_refused():
    inp = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(3, 3, padding="same", name="branch")(inp)
    h = keras.layers.Add(name="add")([inp, h])
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h)))
    with pytest.raises(ValueError, match="'branch' is not a valid split point.*'add'"):
        tfxattr.explain(model, np.zeros((1, 8, 8, 3)), "iia", layers=["input", "branch"], steps=2)


# IIA2/IIA3 on the eleven Keras applications: tests/models/test_layers.py (one build per model for splits and IIA)
def test_iia2_graph_mode_on_mobilenet_v2():
    spec = keras_apps.get("mobilenet_v2")
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(3).uniform(0, 255, (2,) + spec.input_shape).astype(np.float32)
    e = tfxattr.explain("mobilenet_v2", x, "iia2", targets=[1, 2], steps=2, weights=None)
    assert e.attribution.shape == (2, 224, 224, 1) and np.isfinite(e.attribution).all()
