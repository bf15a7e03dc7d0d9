"""RISE (Petsiuk et al. 2018, Eq. 6): with masks that keep everything (p = 1) the map is f(x) at every
pixel; masks are smooth, in [0, 1], keep about p of the image, and are fixed by the seed alone."""
import numpy as np
import pytest

import tfxattr
from tests.methods.cam_reference import IMAGES, SIZE, TARGETS, cnn
from tfxattr.methods.rise import RISE


@pytest.fixture(scope="module")
def model():
    return cnn()


def test_all_ones_masks_give_a_constant_map_equal_to_the_score(model):
    e = tfxattr.explain(model, IMAGES, "rise", targets=TARGETS, samples=5, keep=1.0, seed=0)
    f = model(IMAGES).numpy()[np.arange(3), TARGETS]
    np.testing.assert_allclose(e.attribution, np.broadcast_to(f[:, None, None, None], e.attribution.shape),
                               rtol=1e-5, atol=1e-6)


def test_masks_and_seeding(model):
    masks = RISE(samples=300, grid=4, keep=0.3).masks(0, (SIZE, SIZE), seed=1)
    assert masks.shape == (128, SIZE, SIZE) and masks.min() >= 0 and masks.max() <= 1
    assert abs(masks.mean() - 0.3) < 0.05
    assert len(np.unique(masks)) > 2  # bilinear upsampling: smooth, not binary
    a = tfxattr.explain(model, IMAGES, "rise", targets=TARGETS, samples=150, seed=3, batch_size=7).attribution
    b = tfxattr.explain(model, IMAGES[1:2], "rise", targets=TARGETS[1:2], samples=150, seed=3).attribution
    np.testing.assert_allclose(b[0], a[1], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="keep"):
        RISE(keep=0)
