"""XRAI over any tfxattr method through saliency.core.XRAI (NumPy 2)."""
import numpy as np
import pytest
from saliency.core import XRAI as PairXRAI

import tfxattr
from tfxattr.methods.xrai import XRAI


@pytest.fixture(scope="module")
def demo(demo_model, demo_data):
    return demo_model, demo_data["images"][:2].astype(np.float32), demo_data["labels"][:2]


def test_default_is_ig_over_black_and_white_and_matches_pair(demo):
    model, x, y = demo
    adapter = tfxattr.as_model(model)
    method = XRAI(inner_options={"steps": 8})
    base = method.base_attribution(adapter, x, y)
    black = tfxattr.explain(model, x, "ig", targets=y, steps=8, baseline="black").attribution
    white = tfxattr.explain(model, x, "ig", targets=y, steps=8, baseline="white").attribution
    np.testing.assert_allclose(base, (black + white) / 2, rtol=1e-6, atol=1e-7)
    maps, ranks = method.regions(adapter, x, y)
    assert maps.shape == (2, 64, 64) and ranks.shape == (2, 64, 64) and ranks.min() >= 1
    for i in range(2):
        pair = PairXRAI().GetMask(x[i].astype(np.float64), None, base_attribution=base[i].astype(np.float64))
        np.testing.assert_allclose(maps[i], pair, rtol=1e-6)
    e = tfxattr.explain(model, x, "xrai", targets=y, inner_options={"steps": 8})
    np.testing.assert_allclose(e.attribution[..., 0], maps)


def test_regions_are_ranked_by_gain_density(demo):
    model, x, y = demo
    maps, ranks = XRAI(inner_options={"steps": 8}).regions(tfxattr.as_model(model), x, y)
    for m, r in zip(maps, ranks):
        gains = []
        for k in range(1, r.max() + 1):
            region = m[r == k]
            assert region.size > 0 and np.ptp(region) == 0  # one value per region
            gains.append(region[0])
        assert np.all(np.diff(gains[:-1]) <= 1e-12)  # rank 1 is the densest (the last may be leftovers)
    ranked = tfxattr.explain(model, x, "xrai", targets=y, inner_options={"steps": 8}, result="ranks").attribution
    np.testing.assert_array_equal(ranked[..., 0], ranks)


@pytest.mark.parametrize("base,opts", [("ig+idgi", {"steps": 8}), ("gradcam", None), ("iia2", {"steps": 2})])
def test_any_method_gives_the_base_attribution(demo, base, opts):
    model, x, y = demo
    adapter = tfxattr.as_model(model)
    method = XRAI(inner=base, inner_options=opts)
    expected = tfxattr.explain(model, x, base, targets=y, **(opts or {})).attribution
    if "baseline" in tfxattr.methods.METHODS[base].defaults:
        white = tfxattr.explain(model, x, base, targets=y, baseline="white", **(opts or {})).attribution
        black = tfxattr.explain(model, x, base, targets=y, baseline="black", **(opts or {})).attribution
        expected = (white + black) / 2
    np.testing.assert_allclose(method.base_attribution(adapter, x, y), expected, rtol=1e-5, atol=1e-7)
    maps = tfxattr.explain(model, x, f"xrai:inner={base}", targets=y, inner_options=opts).attribution
    assert maps.shape == (2, 64, 64, 1) and np.isfinite(maps).all()


def test_constant_image_is_one_region(demo):
    model, _, _ = demo
    flat = np.full((1, 64, 64, 3), 90.0, np.float32)
    maps, ranks = XRAI(inner="gradient").regions(tfxattr.as_model(model), flat, np.array([1]))
    assert np.all(ranks == 1) and np.isfinite(maps).all()


def test_option_errors():
    with pytest.raises(ValueError, match="inner must be"):
        XRAI(inner="xrai")
    with pytest.raises(ValueError, match="inner must be the name of another method"):
        XRAI(inner=tfxattr.get_method("ig"))  # XRAI makes one instance per baseline from the name
    with pytest.raises(ValueError, match="unknown method"):
        XRAI(inner="nope")
    with pytest.raises(ValueError, match="inner_options"):
        XRAI(inner_options=[1])
    with pytest.raises(ValueError, match="unknown option"):
        XRAI(inner_options={"stepz": 3})
    with pytest.raises(ValueError, match="area_threshold"):
        XRAI(area_threshold=1.5)
    with pytest.raises(ValueError, match="result"):
        XRAI(result="segments")
    with pytest.raises(ValueError, match="baselines"):
        XRAI(baselines="black")
