"""One contract for every registered method: shapes, dtype, batches, targets, determinism, bad input.

Like Captum's common tests: each method runs with its defaults, except that options named in FAST
(when the method has them) are shrunk so the whole contract runs in seconds.
"""
import numpy as np
import pytest

import tfxattr
from tfxattr.aggregate import PATH_AGGREGATORS
from tfxattr.methods import METHODS
from tfxattr.methods.base import find_spec
from tfxattr.paths import GRADIENT_SIDES, RULES, SCHEDULED_RULES, has_segments

# "learned": a seeded, untrained explainer over the tiny CNN's features (the shipped one is for the demo model)
FAST = {"steps": 3, "points": 3, "ascent_steps": 2, "samples": 2, "explainer": "untrained"}


def fast_options(name, images):
    defaults = find_spec(name).defaults
    opts = {k: v for k, v in FAST.items() if k in defaults}
    if "base" in defaults:  # a wrapper (xrai, smooth): shrink its base method's options too
        opts["base_options"] = {k: v for k, v in FAST.items() if k in find_spec(defaults["base"]).defaults}
    if name.startswith("path"):
        alphas = np.linspace(0, 1, 4, dtype=np.float32)[:, None, None, None, None]
        opts = {"path": np.moveaxis(alphas * images[None], 0, 1)}  # (N, 4, H, W, C), black baseline -> image
    return opts


@pytest.fixture(scope="module")
def model_and_images():
    from tests.helpers import build_tiny_cnn

    images = np.random.default_rng(5).uniform(0, 255, (3, 16, 16, 3)).astype(np.float32)
    return build_tiny_cnn(), images


@pytest.fixture(scope="module")
def vit_and_images():
    from tests.helpers import build_tiny_vit

    images = np.random.default_rng(5).uniform(0, 255, (3, 16, 16, 3)).astype(np.float32)
    return build_tiny_vit(), images


def fixture_for(name, request):
    """The tiny ViT for methods that need a Vision Transformer, else the tiny CNN."""
    vit = find_spec(name).cls.architecture == "vit"
    return request.getfixturevalue("vit_and_images" if vit else "model_and_images")


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_contract(name, request):
    check_contract(name, fixture_for(name, request))


# the path methods need no architecture: they keep working on a ViT
@pytest.mark.parametrize("name", ["gradient", "ig", "ig+idgi", "blur_ig+idgi"])
def test_path_methods_on_a_vit(name, vit_and_images):
    check_contract(name, vit_and_images)


# every (path, rule or gradient side, aggregator) combination a path method offers; ig's rules without
# segments (trapezoid, Gauss-Legendre) are refused with IDGI (test_paths.test_ig_rejects_trapezoid_with_idgi)
PATH_COMBINATIONS = (
    [("ig", {"aggregator": agg, "rule": rule}) for rule in RULES for agg in PATH_AGGREGATORS
     if has_segments(rule) or agg != "idgi"]
    + [("ig", {"aggregator": agg, "rule": rule, "schedule": "adaptive"}) for rule in SCHEDULED_RULES
       for agg in PATH_AGGREGATORS if has_segments(rule) or agg != "idgi"]
    + [("blur_ig", {"aggregator": agg, "gradient_at": side}) for side in GRADIENT_SIDES for agg in PATH_AGGREGATORS]
    + [(name, {"aggregator": agg}) for name in ("guided_ig", "path") for agg in PATH_AGGREGATORS])


@pytest.mark.parametrize("name,options", PATH_COMBINATIONS,
                         ids=["-".join([n, *map(str, o.values())]) for n, o in PATH_COMBINATIONS])
def test_path_combination_contract(name, options, model_and_images):
    check_contract(name, model_and_images, options)


def check_contract(name, model_and_images, options=None):
    """The contract for ``name`` with its FAST options plus ``options``."""
    model, images = model_and_images
    opts = {**fast_options(name, images), **(options or {})}
    batch = tfxattr.explain(model, images, name, target=[0, 3, 1], seed=0, **opts)
    attr = batch.attribution
    assert attr.dtype == np.float32 and attr.ndim == 4 and attr.shape[:3] == images.shape[:3]
    assert attr.shape[3] in (1, 3)
    assert np.all(np.isfinite(attr)) and np.any(attr != 0), "empty or non-finite attribution"
    assert batch.map.shape == images.shape[:3]
    np.testing.assert_array_equal(batch.targets, [0, 3, 1])
    # determinism with a seed
    again = tfxattr.explain(model, images, name, target=[0, 3, 1], seed=0, **opts)
    np.testing.assert_allclose(again.attribution, attr, rtol=1e-5, atol=1e-7)
    # one image in, one (H,W,C) out, equal to its row of the batch
    one_opts = dict(opts)
    if name.startswith("path"):
        one_opts["path"] = opts["path"][1]
    one = tfxattr.explain(model, images[1], name, target=3, seed=0, **one_opts)
    assert one.attribution.shape == attr.shape[1:]
    np.testing.assert_allclose(one.attribution, attr[1], rtol=1e-4, atol=1e-5 * np.abs(attr[1]).max())
    # a different target changes the explanation (of a class-specific method)
    other = tfxattr.explain(model, images[1], name, target=4, seed=0, **one_opts)
    assert np.allclose(other.attribution, one.attribution) != find_spec(name).cls.class_specific


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_rejects_bad_input(name, request):
    model, images = fixture_for(name, request)
    opts = fast_options(name, images)
    with pytest.raises(ValueError, match="unknown option"):
        tfxattr.explain(model, images, name, no_such_option=1, **opts)
    with pytest.raises(ValueError, match="out of range"):
        tfxattr.explain(model, images, name, target=5, **opts)
    with pytest.raises(ValueError, match="channels"):
        tfxattr.explain(model, images[..., :2], name, **opts)
    bad = images.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        tfxattr.explain(model, bad, name, **opts)


def test_unknown_method_lists_the_methods(model_and_images):
    model, images = model_and_images
    with pytest.raises(ValueError, match="available: .*ig"):
        tfxattr.explain(model, images, "integrated")


def test_smoothgrad_wraps_any_method_and_is_seeded(model_and_images):
    model, images = model_and_images
    a = tfxattr.explain(model, images, "ig+idgi", steps=3, smooth={"samples": 3}, seed=1).attribution
    b = tfxattr.explain(model, images, "ig+idgi", steps=3, smooth={"samples": 3}, seed=1).attribution
    c = tfxattr.explain(model, images, "ig+idgi", steps=3, smooth={"samples": 3}, seed=2).attribution
    plain = tfxattr.explain(model, images, "ig+idgi", steps=3).attribution
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and not np.allclose(a, plain)
    with pytest.raises(ValueError, match="smooth"):
        tfxattr.explain(model, images, "ig", smooth={"sample": 3})
