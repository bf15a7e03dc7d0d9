"""precision=: forward and backward passes on a mixed-precision copy of a Keras model."""
import numpy as np
import pytest
from scipy.stats import spearmanr

import tfxattr
from tfxattr.methods import METHODS
from tfxattr.methods.base import Wrapper, find_spec

# per-method options shrunk (never grown) for speed, still enough steps for a stable map
OPTIONS = {"steps": 50, "ascent_steps": 5, "samples": 4}
# GGIG's steps are its starts on the line, each an ascent of ascent_steps gradients: fewer than IG's steps
GGIG_STEPS = 5
# the bar for a bfloat16 map against the float32 map
MIN_SPEARMAN = 0.95
# Guided IG's path follows the ranks of the gradient, so a change of 1e-3 of a pixel level moves it;
# bfloat16 must not change its map more than that (within this margin)
CHAOTIC = {"guided_ig", "guided_ig+idgi"}
PIXEL_NUDGE = 1e-3
MARGIN = 0.03


def _options(name):
    defaults = find_spec(name).defaults
    opts = _shrunk(defaults)
    if "ascent_steps" in defaults:
        opts["steps"] = min(defaults["steps"], GGIG_STEPS)
    if issubclass(find_spec(name).cls, Wrapper):
        opts["inner_options"] = _shrunk(find_spec(defaults["inner"]).defaults)
    return opts


def _shrunk(defaults):
    return {k: v for k, v in OPTIONS.items() if isinstance(defaults.get(k), int) and defaults[k] > v}


def _spearman(a, b):
    return min(spearmanr(a[i].ravel(), b[i].ravel())[0] for i in range(len(a)))


@pytest.fixture(scope="module")
def images(demo_data):
    return demo_data["images"][:2].astype(np.float32)


@pytest.mark.parametrize("name", sorted(n for n in METHODS if not n.startswith("path") and n != "ggig_paper"))
def test_bfloat16_maps_agree_with_float32(name, demo_model, demo_vit, images):
    """Every method on its demo model (the demo ViT for the attention methods)."""
    if find_spec(name).cls.architecture == "vit":
        demo_model = demo_vit
    opts = _options(name)
    full = tfxattr.explain(demo_model, images, name, seed=0, progress=False, **opts)
    low = tfxattr.explain(demo_model, images, name, targets=full.targets, seed=0, progress=False,
                          precision="bfloat16", **opts)
    assert low.run["precision"] == "bfloat16" and np.all(np.isfinite(low.attribution))
    rho = _spearman(full.map, low.map)
    if name in CHAOTIC:
        nudged = images + np.random.default_rng(0).normal(0, PIXEL_NUDGE, images.shape).astype(np.float32)
        again = tfxattr.explain(demo_model, nudged, name, targets=full.targets, seed=0, progress=False, **opts)
        assert rho >= _spearman(full.map, again.map) - MARGIN, rho
    else:
        assert rho >= MIN_SPEARMAN, rho


def test_the_copy_computes_in_bfloat16_between_a_float32_stem_and_head(demo_model):
    from tfxattr.models.precision import _flat_layers

    adapter = tfxattr.as_model(demo_model, precision="bfloat16")
    clone = adapter.keras_model
    assert clone is not demo_model and all(layer.dtype_policy.name == "float32" for layer in demo_model.layers)
    policies = [layer.dtype_policy.name for layer in _flat_layers(clone) if layer.weights]
    assert policies[0] == policies[-1] == "float32" and set(policies[1:-1]) == {"mixed_bfloat16"}
    for a, b in zip(clone.get_weights(), demo_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert tfxattr.as_model(demo_model, precision="bfloat16") is not tfxattr.as_model(demo_model)


def test_idgi_stays_exactly_complete_for_the_values_it_used(demo_model, images):
    """IDGI's sum telescopes to f(x) - f(b) of the model it ran, in any precision."""
    low = tfxattr.as_model(demo_model, precision="bfloat16")
    exp = tfxattr.explain(demo_model, images, "ig+idgi", steps=16, precision="bfloat16", progress=False)
    want = low.values(images, exp.targets).numpy() - low.values(0 * images, exp.targets).numpy()
    np.testing.assert_allclose(exp.attribution.reshape(len(images), -1).sum(1), want, rtol=1e-4)
    full = tfxattr.as_model(demo_model)
    exact = full.values(images, exp.targets).numpy() - full.values(0 * images, exp.targets).numpy()
    assert np.all(np.abs(want / exact - 1) < 0.05)  # the bfloat16 model's f is a few per mille off float32's


def test_precision_is_validated(demo_model, images, tiny_model):
    with pytest.raises(ValueError, match="precision.*did you mean 'bfloat16'"):
        tfxattr.explain(demo_model, images, "gradient", precision="bfloat61")
    import tensorflow as tf

    fn = tf.function(lambda x: tiny_model(x))
    with pytest.raises(ValueError, match="precision='float16' needs a keras.Model"):
        tfxattr.explain(fn, images[:, :16, :16], "gradient", precision="float16", input_shape=(16, 16, 3))
    adapter = tfxattr.as_model(demo_model)
    with pytest.raises(ValueError, match="precision cannot be changed"):
        tfxattr.as_model(adapter, precision="bfloat16")
