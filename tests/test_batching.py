"""A batch equals single calls, batch_size never changes the result, SavedModels equal Keras models."""
import numpy as np
import pytest

import tfxattr


@pytest.mark.parametrize("method,options", [("ig", {"steps": 12}), ("ig+idgi", {"steps": 12}),
                                            ("guided_ig+idgi", {"steps": 10}), ("blur_ig", {"steps": 10}),
                                            ("ggig", {"steps": 3, "ascent_steps": 3, "lr": 10.0})])
def test_batch_with_per_image_targets_equals_single_calls(demo_model, demo_data, method, options):
    images = demo_data["images"][:3].astype(np.float32)
    targets = [1, 0, 2]
    batch = tfxattr.explain(demo_model, images, method, targets=targets, **options)
    for i, t in enumerate(targets):
        one = tfxattr.explain(demo_model, images[i], method, targets=t, **options)
        np.testing.assert_allclose(batch.attribution[i], one.attribution, rtol=1e-4,
                                   atol=1e-5 * np.abs(one.attribution).max())
    np.testing.assert_array_equal(batch.targets, targets)


@pytest.mark.parametrize("method", ["ig", "ig+idgi", "blur_ig+idgi"])
def test_result_does_not_depend_on_batch_size(demo_model, demo_data, method):
    images = demo_data["images"][:2].astype(np.float32)
    ref = tfxattr.explain(demo_model, images, method, steps=9, batch_size=32).attribution
    for bs in (1, 4, 7):
        got = tfxattr.explain(demo_model, images, method, steps=9, batch_size=bs).attribution
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("export", ["keras_export", "tf_saved_model"])
def test_saved_model_gives_the_same_ig_as_the_keras_model(demo_model, demo_data, tmp_path, export):
    import tensorflow as tf

    path = str(tmp_path / "saved")
    if export == "keras_export":
        demo_model.export(path, verbose=False)
    else:
        fn = tf.function(lambda x: demo_model(x, training=False),
                         input_signature=[tf.TensorSpec((None,) + demo_model.input_shape[1:], tf.float32)])
        module = tf.Module()
        module.model = demo_model  # tracks the variables the function captures
        module.f = fn
        tf.saved_model.save(module, path, signatures={"serving_default": fn})
    images = demo_data["images"][:2].astype(np.float32)
    ref = tfxattr.explain(demo_model, images, "ig", steps=16)
    got = tfxattr.explain(path, images, "ig", steps=16)
    np.testing.assert_array_equal(got.targets, ref.targets)
    np.testing.assert_allclose(got.attribution, ref.attribution, rtol=1e-4, atol=1e-5 * np.abs(ref.attribution).max())


# --------------------------------------------------------------------------- the chunking primitive
def test_chunking_primitives():
    from tfxattr import batching

    assert [(s.start, s.stop) for s in batching.spans(7, 3)] == [(0, 3), (3, 6), (6, 7)]
    assert batching.count(7, 3) == 3 and batching.count(0, 3) == 0
    np.testing.assert_array_equal(batching.pairs(2, [5, 6]), [[0, 5], [0, 6], [1, 5], [1, 6]])
    got = [(k, rows.tolist()) for k, rows in batching.groups([4, 1, 4, 4, 1, 4], 2)]
    assert got == [(4, [0, 2]), (4, [3, 5]), (1, [1, 4])]  # one key per chunk, first-seen order
    out = batching.per_image([1, 0, 1], np.array([[1.0, -2.0], [3.0, 3.0], [2.0, -5.0]]), 2)
    np.testing.assert_array_equal(out, [[3.0, 3.0], [3.0, -7.0]])
    peak = batching.per_image([0, 0], np.array([[1.0, -2.0], [3.0, -4.0]]), 1, np.maximum, np.full((1, 2), -np.inf))
    np.testing.assert_array_equal(peak, [[3.0, -2.0]])


class CountingEvaluator:
    """A ModelAdapter that records how many rows every model call gets."""

    def __init__(self, adapter):
        self.adapter, self.rows = adapter, []

    def __getattr__(self, name):
        return getattr(self.adapter, name)

    def values_and_gradients(self, x, targets):
        self.rows.append(len(x))
        return self.adapter.values_and_gradients(x, targets)

    def values(self, x, targets):
        self.rows.append(len(x))
        return self.adapter.values(x, targets)

    def network_view(self):
        """The network's own evaluator, counted into the same rows (GGIG ascends there)."""
        to_network, network = self.adapter.network_view()
        counted = CountingEvaluator(network)
        counted.rows = self.rows
        return to_network, counted


@pytest.mark.parametrize("method,options", [("guided_ig", {"steps": 6}), ("guided_ig+idgi", {"steps": 6}),
                                            ("ggig", {"steps": 3, "ascent_steps": 2, "lr": 10.0})])
def test_adaptive_paths_send_at_most_batch_size_rows_per_call(tiny_model, method, options):
    images = np.random.default_rng(7).uniform(0, 255, (5, 16, 16, 3)).astype(np.float32)
    targets = np.array([0, 1, 2, 3, 4], np.int32)
    m = tfxattr.methods.get_method(method, **options)
    small = CountingEvaluator(tfxattr.as_model(tiny_model, batch_size=2))
    got = m.attribute(small, images, targets)
    big = CountingEvaluator(tfxattr.as_model(tiny_model, batch_size=32))
    ref = m.attribute(big, images, targets)
    assert max(small.rows) == 2 and max(big.rows) > 2  # N = 5 (x 3 points for GGIG) rows never in one call
    ggig = method == "ggig"  # GGIG: one start per point of the line (steps), ascent_steps calls each
    rows = 5 * (options["steps"] if ggig else 1)
    calls_per_chunk = (options["ascent_steps"] if ggig else options["steps"]) + ("idgi" in method)
    assert len(small.rows) == -(-rows // 2) * calls_per_chunk
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
