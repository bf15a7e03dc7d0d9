"""A batch equals single calls, batch_size never changes the result, SavedModels equal Keras models."""
import numpy as np
import pytest

import tfxattr


@pytest.mark.parametrize("method,options", [("ig", {"steps": 12}), ("ig+idgi", {"steps": 12}),
                                            ("guided_ig+idgi", {"steps": 10}), ("blur_ig", {"steps": 10}),
                                            ("ggig", {"points": 3, "ascent_steps": 3, "lr": 10.0})])
def test_batch_with_per_image_targets_equals_single_calls(demo_model, demo_data, method, options):
    images = demo_data["images"][:3].astype(np.float32)
    targets = [1, 0, 2]
    batch = tfxattr.explain(demo_model, images, method, target=targets, **options)
    for i, t in enumerate(targets):
        one = tfxattr.explain(demo_model, images[i], method, target=t, **options)
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
