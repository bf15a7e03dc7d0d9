"""Exact agreement with PAIR saliency 0.2.1 on the same model, input and steps."""
import numpy as np
import pytest
import saliency.core as saliency_core

import tfxattr
from tfxattr.interop import call_model_function


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def setup(demo_model, demo_data):
    image = demo_data["images"][0].astype(np.float32)
    target = int(demo_data["labels"][0])
    return demo_model, image, target, call_model_function(demo_model, target=target)


def test_ig_saliency_rule_equals_pair_integrated_gradients(setup):
    model, image, target, cmf = setup
    ref = saliency_core.IntegratedGradients().GetMask(image, cmf, x_baseline=np.zeros_like(image), x_steps=25,
                                                       batch_size=10)
    ours = tfxattr.explain(model, image, "ig", target=target, steps=25, rule="saliency", batch_size=7).attribution
    assert _rel(ours, ref) < 1e-4


def test_blur_ig_equals_pair_blur_ig(setup):
    model, image, target, cmf = setup
    ref = saliency_core.BlurIG().GetMask(image, cmf, steps=20, max_sigma=50, batch_size=1, sqrt=False)
    ours = tfxattr.explain(model, image, "blur_ig", target=target, steps=20, max_sigma=50).attribution
    assert _rel(ours, ref) < 1e-4


def test_guided_ig_equals_pair_guided_ig(setup, monkeypatch):
    import saliency.core.guided_ig as pair_guided_ig

    real_quantile = np.quantile

    def quantile(a, q, interpolation=None, **kw):  # PAIR passes the NumPy-1 keyword; NumPy 2 calls it method
        return real_quantile(a, q, method=interpolation, **kw)

    monkeypatch.setattr(pair_guided_ig.np, "quantile", quantile)
    model, image, target, cmf = setup
    ref = saliency_core.GuidedIG().GetMask(image, cmf, x_baseline=np.zeros_like(image), x_steps=30)
    ours = tfxattr.explain(model, image, "guided_ig", target=target, steps=30).attribution
    assert _rel(ours, ref) < 1e-4
