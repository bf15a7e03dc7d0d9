"""One contract for every registered method: shapes, dtype, batches, targets, determinism, bad input.

Like Captum's common tests: each method runs with its defaults, except that options named in FAST
(when the method has them) are shrunk so the whole contract runs in seconds.
"""
import re

import numpy as np
import pytest

import tfxattr
from tfxattr.methods import METHODS
from tfxattr.methods.base import Wrapper, find_spec
from tfxattr.paths import GRADIENT_SIDES, RULES, SCHEDULED_RULES, has_segments
from tfxattr.paths.aggregators import PATH_AGGREGATORS

# "learned": a seeded, untrained explainer over the tiny CNN's features (the shipped one is for the demo model)
FAST = {"steps": 3, "ascent_steps": 2, "samples": 2, "explainer": "untrained"}


def fast_options(name, images):
    defaults = find_spec(name).defaults
    opts = {k: v for k, v in FAST.items() if k in defaults}
    if issubclass(find_spec(name).cls, Wrapper):  # xrai, smooth: shrink the wrapped method's options too
        opts["inner_options"] = {k: v for k, v in FAST.items() if k in find_spec(defaults["inner"]).defaults}
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
    batch = tfxattr.explain(model, images, name, targets=[0, 3, 1], seed=0, **opts)
    attr = batch.attribution
    assert attr.dtype == np.float32 and attr.ndim == 4 and attr.shape[:3] == images.shape[:3]
    assert attr.shape[3] in (1, 3)
    assert np.all(np.isfinite(attr)) and np.any(attr != 0), "empty or non-finite attribution"
    assert batch.map.shape == images.shape[:3]
    np.testing.assert_array_equal(batch.targets, [0, 3, 1])
    # determinism with a seed
    again = tfxattr.explain(model, images, name, targets=[0, 3, 1], seed=0, **opts)
    np.testing.assert_allclose(again.attribution, attr, rtol=1e-5, atol=1e-7)
    # one image in, one (H,W,C) out, equal to its row of the batch
    one_opts = dict(opts)
    if name.startswith("path"):
        one_opts["path"] = opts["path"][1]
    one = tfxattr.explain(model, images[1], name, targets=3, seed=0, **one_opts)
    assert one.attribution.shape == attr.shape[1:]
    np.testing.assert_allclose(one.attribution, attr[1], rtol=1e-4, atol=1e-5 * np.abs(attr[1]).max())
    # a different target changes the explanation (of a class-specific method)
    other = tfxattr.explain(model, images[1], name, targets=4, seed=0, **one_opts)
    assert np.allclose(other.attribution, one.attribution) != find_spec(name).cls.class_specific


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_rejects_bad_input(name, request):
    model, images = fixture_for(name, request)
    opts = fast_options(name, images)
    with pytest.raises(ValueError, match="unknown option"):
        tfxattr.explain(model, images, name, no_such_option=1, **opts)
    with pytest.raises(ValueError, match="out of range"):
        tfxattr.explain(model, images, name, targets=5, **opts)
    with pytest.raises(ValueError, match="channels"):
        tfxattr.explain(model, images[..., :2], name, **opts)
    bad = images.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        tfxattr.explain(model, bad, name, **opts)


# every retired option name (checks.RENAMED, and a class's own renamed_options) whose new name a method has
RENAMED_CASES = sorted((name, old, new) for name, spec in METHODS.items() for old, new in spec.cls.renames().items()
                       if new in spec.defaults and old not in spec.defaults)


def test_the_renamed_options_of_the_glossary_are_covered():
    covered = {(find_spec(name).cls.name, old, new) for name, old, new in RENAMED_CASES}
    assert {("ggig", "points", "steps"), ("blur_ig", "max_sigma", "blur_sigma"), ("smooth", "base", "inner"),
            ("smooth", "method", "inner"),
            ("smooth", "base_options", "inner_options"), ("xrai", "base", "inner"),
            ("xrai", "base_options", "inner_options"), ("scorecam", "max_n", "top_channels"),
            ("ig", "base", "baseline")} <= covered


@pytest.mark.parametrize("name,old,new", RENAMED_CASES, ids=[f"{n}-{o}" for n, o, _ in RENAMED_CASES])
def test_a_renamed_option_is_refused_with_its_new_name(name, old, new):
    owner = find_spec(name).cls.name
    message = re.escape(f"method {owner!r}: option {old!r} was renamed {new!r}")
    with pytest.raises(ValueError, match=message):
        tfxattr.get_method(name, **{old: find_spec(name).defaults[new]})
    with pytest.raises(ValueError, match=message):  # the spec text of eval, the CLI and explain()
        tfxattr.get_method(f"{name}:{old}=1")


def test_a_wrappers_inner_method_comes_by_spec_by_keyword_or_by_instance(model_and_images):
    """explain()'s own ``method`` argument is the method explained; the wrapped one is ``inner``, so it can be
    a keyword of explain() too."""
    model, images = model_and_images
    by_spec = tfxattr.explain(model, images, "smooth:inner=ig+idgi,samples=2", inner_options={"steps": 3}, seed=0)
    by_instance = tfxattr.explain(model, images, tfxattr.get_method("smooth", inner="ig+idgi", samples=2,
                                                                    inner_options={"steps": 3}), seed=0)
    by_keyword = tfxattr.explain(model, images, "smooth", inner="ig+idgi", samples=2, inner_options={"steps": 3},
                                 seed=0)
    np.testing.assert_array_equal(by_spec.attribution, by_instance.attribution)
    np.testing.assert_array_equal(by_spec.attribution, by_keyword.attribution)
    assert by_spec.method == "smooth" and by_spec.options["inner"] == "ig+idgi"
    with pytest.raises(ValueError, match=r"\['steps'\] given both in the method spec"):
        tfxattr.get_method("ig:steps=3", steps=4)


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
