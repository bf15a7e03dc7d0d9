"""Shared fixtures: the trained demo model and its data, and a tiny smooth CNN for fast checks."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.helpers import build_tiny_cnn  # noqa: E402


@pytest.fixture(scope="session")
def demo_model():
    from tfxattr.demo import load_demo_model
    return load_demo_model()


@pytest.fixture(scope="session")
def demo_data():
    from tfxattr.demo import make_demo_data
    return make_demo_data(6, seed=123)


@pytest.fixture(scope="session")
def tiny_model():
    return build_tiny_cnn()


@pytest.fixture(scope="session")
def tiny_images():
    return np.random.default_rng(0).uniform(0, 255, (3, 16, 16, 3)).astype(np.float32)


@pytest.fixture
def probability_calls(monkeypatch):
    """Records the batch size of every ModelAdapter.probabilities call (metrics must batch them)."""
    from tfxattr.models import ModelAdapter

    sizes = []
    real = ModelAdapter.probabilities

    def counting(self, x, batch_size=None):
        sizes.append(len(x))
        return real(self, x, batch_size)
    monkeypatch.setattr(ModelAdapter, "probabilities", counting)
    return sizes
