"""Shared fixtures: the trained demo model and its data, a tiny smooth CNN for fast checks, and the eleven Keras
applications built once each (the models themselves are built in tests/helpers.py)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Subprocesses (the CLI, eval/ scripts, Beam workers) import the checkout under test, not whichever copy of
# tfxattr happens to be installed (an editable install may point at another worktree or a removed CI checkout).
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)
# Under pytest-xdist (the README's `-n auto --dist loadfile`: one worker per core, a test file's tests in one worker,
# so its module fixtures are built once) each worker's TensorFlow, and its children's, computes on its share of
# the cores: TensorFlow reads these before its first op; without them the workers' thread pools fight over the
# same cores and the run is slower than one process.


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the platform tells it): what
    ``tfxattr.parallel.available_cores`` says, which cannot be imported here, before TensorFlow is set up."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _SHARE = str(max(1, usable_cores() // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _name in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(_name, _SHARE)

import gc  # noqa: E402
from typing import NamedTuple  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import keras_apps  # noqa: E402
from tests.helpers import app_sizes, build_app, build_tiny_cnn  # noqa: E402


@pytest.fixture(scope="session")
def demo_model():
    from tfxattr.demo import load_demo_model
    return load_demo_model()


@pytest.fixture(scope="session")
def demo_vit():
    """The trained demo ViT, one object for the session: its adapters and the functions traced for it are
    cached on it, so a test that runs a method another test ran on it does not trace the ViT again."""
    from tfxattr.demo import load_demo_vit
    return load_demo_vit()


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


class App(NamedTuple):
    name: str
    model: object  # keras.Model, weights=None (seed 0)
    native: bool  # built at its native 224 / 299 (slow runs) instead of the small side of SMALL_APP_SIDE


@pytest.fixture(scope="session", params=[pytest.param((name, size.values[0]), id=f"{name}-{size.id}", marks=size.marks)
                                         for name in keras_apps.NAMES for size in app_sizes()])
def keras_app(request):
    """Each Keras application built once for every test that takes it (keras_apps/test_keras_apps.py,
    keras_apps/test_explain_apps.py, models/test_layers.py): pytest runs the tests of one parameter of a
    session fixture together, across files, and tears it down before the next, so one model is alive at a time.
    The tests only read the model (splits are new models sharing its layers)."""
    import keras

    name, native = request.param
    keras.backend.clear_session()
    gc.collect()  # the previous application, released by pytest just before this call
    return App(name, build_app(name, native=native, seed=0), native)


#: most workers `-n auto` starts: each holds its own demo models and applications (~2.7 GB at its peak)
MAX_WORKERS = 4


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per core the process may use, at most MAX_WORKERS."""
    return max(1, min(usable_cores(), MAX_WORKERS))
