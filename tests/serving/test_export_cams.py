"""Issue 14's methods exported as SavedModel signatures equal tfxattr.explain (RISE too: its masks are drawn
from the seed, so the export traced with a seed uses explain()'s masks for that seed)."""
import numpy as np
import pytest
import tensorflow as tf

import tfxattr
from tests.helpers import build_tiny_cnn
from tfxattr.serving import signature_name

TOLERANCE = 1e-4  # relative L2 distance, as tests/serving/test_export.py
BATCH = 5  # not a divisor of the (image, channel) or (image, patch) rows: chunks cross images
METHODS = {
    "layercam": {}, "xgradcam": {}, "liftcam": {}, "fullgrad": {}, "ablationcam": {},
    "scorecam": {"top_channels": 5}, "occlusion": {"patch": 6, "stride": 4, "baseline": "white"},
    "rise": {"samples": 40, "grid": 4},
}
SEED = 0


@pytest.fixture(scope="module")
def model():
    return build_tiny_cnn()  # 16 x 16, 8 channels at its last conv layer: small graphs, fast export


@pytest.fixture(scope="module")
def served(model, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("cams") / "1")
    tfxattr.export(model, path, methods={k: (k, v) for k, v in METHODS.items()}, batch_size=BATCH, seed=SEED)
    return tf.saved_model.load(path)


@pytest.mark.parametrize("name", list(METHODS))
def test_signature_equals_explain(served, model, tiny_images, name):
    images, targets = tiny_images, np.array([1, 0, 2], np.int32)
    out = served.signatures[signature_name(name)](images=tf.constant(images), targets=tf.constant(targets))
    ref = tfxattr.explain(model, images, name, targets=targets, batch_size=BATCH, seed=SEED,
                          **METHODS[name]).attribution
    got = out["attributions"].numpy()
    assert got.shape == ref.shape
    assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < TOLERANCE
