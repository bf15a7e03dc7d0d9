"""Tests for the synthetic shapes generator (tfxattr.synthetic)."""
import numpy as np
import pytest
from scipy import ndimage

from tfxattr.synthetic import CLASS_NAMES, make_shapes


@pytest.fixture(scope="module")
def data():
    return make_shapes(100, size=64, seed=7)


def test_class_names():
    assert isinstance(CLASS_NAMES, tuple) and 4 <= len(CLASS_NAMES) <= 6
    assert all(isinstance(c, str) and c for c in CLASS_NAMES)
    assert len(set(CLASS_NAMES)) == len(CLASS_NAMES)


@pytest.mark.parametrize("n,size", [(1, 64), (3, 16), (7, 40)])
def test_shapes_and_dtypes(n, size):
    d = make_shapes(n, size=size, seed=0)
    assert set(d) == {"images", "labels", "masks"}
    assert d["images"].shape == (n, size, size, 3) and d["images"].dtype == np.uint8
    assert d["labels"].shape == (n,) and d["labels"].dtype == np.int64
    assert d["masks"].shape == (n, size, size) and d["masks"].dtype == bool
    assert d["labels"].min() >= 0 and d["labels"].max() < len(CLASS_NAMES)
    assert d["masks"].any(axis=(1, 2)).all()


def test_same_seed_same_arrays_other_seed_other_arrays(data):
    again = make_shapes(100, size=64, seed=7)
    for key in data:
        np.testing.assert_array_equal(data[key], again[key])
    other = make_shapes(100, size=64, seed=8)
    assert not np.array_equal(data["images"], other["images"])
    assert not np.array_equal(data["masks"], other["masks"])


def test_labels_cover_all_classes_balanced(data):
    counts = np.bincount(data["labels"], minlength=len(CLASS_NAMES))
    assert counts.min() == counts.max() == 100 // len(CLASS_NAMES)
    assert not np.array_equal(data["labels"][:10], np.sort(data["labels"][:10]))  # shuffled


def test_mask_area_plausible_and_inside_the_frame(data):
    area = data["masks"].mean(axis=(1, 2))
    assert area.min() >= 0.07 and area.max() <= 0.31
    border = data["masks"][:, [0, -1], :].any(axis=(1, 2)) | data["masks"][:, :, [0, -1]].any(axis=(1, 2))
    assert not border.any()


def test_masks_have_the_class_topology(data):
    ring = CLASS_NAMES.index("ring")
    for mask, label in zip(data["masks"], data["labels"]):
        assert ndimage.label(mask)[1] == 1  # one connected object
        holes = ndimage.binary_fill_holes(mask) & ~mask
        assert holes.any() == (label == ring)


def test_mask_is_exactly_the_object(data):
    """The object is a flat-ish colour that differs from the pixels just outside its mask."""
    for img, mask in zip(data["images"].astype(float), data["masks"]):
        inside = img[ndimage.binary_erosion(mask)]
        edge_in = img[mask & ~ndimage.binary_erosion(mask)]
        edge_out = img[ndimage.binary_dilation(mask) & ~mask]
        # The pixels on either side of the mask border are far apart in colour ...
        assert np.linalg.norm(edge_in.mean(0) - edge_out.mean(0)) > 40
        # ... while the mask's own border pixels look like its interior.
        assert np.linalg.norm(edge_in.mean(0) - inside.mean(0)) < 25


def test_size_16_is_supported():
    d = make_shapes(10, size=16, seed=1)
    assert (d["masks"].sum(axis=(1, 2)) >= 15).all()


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(n=0), "n"),
        (dict(n=-3), "n"),
        (dict(n=2.0), "n"),
        (dict(n=True), "n"),
        (dict(n="5"), "n"),
        (dict(n=2, size=15), "size"),
        (dict(n=2, size=64.0), "size"),
        (dict(n=2, seed=-1), "seed"),
        (dict(n=2, seed=1.5), "seed"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        make_shapes(**kwargs)


def test_numpy_integers_are_accepted():
    d = make_shapes(np.int64(2), size=np.int32(20), seed=np.uint8(3))
    np.testing.assert_array_equal(d["images"], make_shapes(2, size=20, seed=3)["images"])
