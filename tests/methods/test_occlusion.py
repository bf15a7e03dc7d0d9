"""Occlusion (Zeiler & Fergus 2014): a patch the size of the image gives f(x) - f(baseline) everywhere;
non-overlapping patches give each patch's own drop; it needs only the model's values (black-box)."""
import numpy as np
import pytest

import tfxattr
from tests.methods.cam_reference import IMAGES, SIZE, TARGETS, cnn


@pytest.fixture(scope="module")
def model():
    return cnn()


def scores(model, x, targets=TARGETS):
    return model(x).numpy()[np.arange(len(x)), targets]


@pytest.mark.parametrize("baseline", ["black", "white", 77.0])
def test_a_patch_the_size_of_the_image_gives_the_score_drop_everywhere(model, baseline):
    e = tfxattr.explain(model, IMAGES, "occlusion", targets=TARGETS, patch=SIZE, stride=1, baseline=baseline)
    value = {"black": 0.0, "white": 255.0}.get(baseline, baseline)
    drop = scores(model, IMAGES) - scores(model, np.full_like(IMAGES, value))
    np.testing.assert_allclose(e.attribution, np.broadcast_to(drop[:, None, None, None], e.attribution.shape),
                               rtol=1e-5, atol=1e-5)


def test_non_overlapping_patches_get_their_own_drop_and_black_box_models_work(model):
    e = tfxattr.explain(model, IMAGES, "occlusion", targets=TARGETS, patch=(6, 4), stride=(6, 4), batch_size=5)
    x = IMAGES.copy()
    x[:, 6:12, 4:8] = 0
    np.testing.assert_allclose(e.attribution[:, 6:12, 4:8, 0], np.broadcast_to(
        (scores(model, IMAGES) - scores(model, x))[:, None, None], (3, 6, 4)), rtol=1e-5, atol=1e-5)
    black_box = tfxattr.as_model(lambda v: model(v), input_shape=(SIZE, SIZE, 3))  # no layers, no Keras model
    np.testing.assert_allclose(tfxattr.explain(black_box, IMAGES, "occlusion", targets=TARGETS, patch=(6, 4),
                                               stride=(6, 4)).attribution, e.attribution, rtol=1e-5, atol=1e-6)


def test_overlapping_patches_average_their_drops_and_bad_options(model):
    e = tfxattr.explain(model, IMAGES[:1], "occlusion", targets=0, patch=4, stride=3)  # patches start at 0, 3, 6, 8

    def drop(top, left):
        x = IMAGES[:1].copy()
        x[:, top:top + 4, left:left + 4] = 0
        return scores(model, IMAGES[:1], [0]) - scores(model, x, [0])
    np.testing.assert_allclose(e.attribution[0, 0, 0], drop(0, 0), rtol=1e-5, atol=1e-6)  # one patch covers (0, 0)
    np.testing.assert_allclose(e.attribution[0, 3, 0], (drop(0, 0) + drop(3, 0)) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(e.attribution[0, 11, 11], drop(8, 8), rtol=1e-5, atol=1e-6)  # the flush last patch
    with pytest.raises(ValueError, match="patch"):
        tfxattr.explain(model, IMAGES, "occlusion", patch=SIZE + 1)
    with pytest.raises(ValueError, match="stride"):
        tfxattr.explain(model, IMAGES, "occlusion", stride=0)
    with pytest.raises(ValueError, match="stride 5 is larger than patch 4"):
        tfxattr.explain(model, IMAGES, "occlusion", patch=4, stride=5)
