"""One answer through every door: ``compute`` on an Explanation scores what ``tfxattr eval`` stores, and an
Explanation brings its images, targets, output and pixel range to every metric (issue 19, items 2-3)."""
import numpy as np
import pytest

import tfxattr
from tfxattr.evaluation import evaluate, load_store
from tfxattr.evaluation.datasets import load_data
from tfxattr.metrics import compute

QUIET = {"progress": False, "log": lambda message: None, "report": False}


def test_compute_on_an_explanation_equals_the_stored_evaluation(tmp_path, demo_model):
    """iia2's map has one channel: ``Explanation.map`` (the metrics' reduction) and the runner reduce it the
    same way, so compute("insertion", ..., explain(...)) is the insertion the store holds, image by image."""
    summary = evaluate("shapes:4", ["demo"], ["iia2"], ["insertion"], tmp_path, images_per_batch=4, **QUIET)
    stored = {r["image"]: r for r in load_store(summary.store).results}
    chunk = next(load_data("shapes:4").chunks(4))
    x = np.stack([np.asarray(image, np.float32) for image in chunk.images])
    targets = [stored[i]["target"] for i in chunk.ids]
    exp = tfxattr.explain(demo_model, x, "iia2", targets=targets, progress=False)
    direct = compute("insertion", demo_model, None, exp)
    want = [stored[i]["scores"]["insertion"]["insertion"] for i in chunk.ids]
    np.testing.assert_allclose(direct.scores["insertion"], want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("metric", ["insertion", "deletion"])
def test_an_explanation_in_another_pixel_range_scores_as_in_its_own(demo_model, demo_data, metric):
    """explain(..., pixel_range=(0, 1)) on images / 255: compute reads the Explanation's range, so the
    scores equal the 0..255 Explanation's (before, the 0..1 images were scored as if they were 0..255)."""
    x = demo_data["images"][:3]
    ref = tfxattr.explain(demo_model, x, "iia2", progress=False)
    unit = tfxattr.explain(demo_model, x / 255.0, "iia2", pixel_range=(0, 1), progress=False)
    np.testing.assert_allclose(unit.map, ref.map, rtol=1e-4, atol=1e-6)
    want = compute(metric, demo_model, None, ref).scores[metric]
    got = compute(metric, demo_model, None, unit).scores[metric]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_an_explanation_brings_its_range_targets_and_output_or_is_refused(tiny_model, tiny_images):
    from tfxattr.metrics.inputs import metric_inputs

    exp = tfxattr.explain(tiny_model, tiny_images / 255.0, "gradient", pixel_range=(0, 1), output="probability",
                          progress=False)
    inputs = metric_inputs(tiny_model, None, exp, consumes="explanation")
    assert inputs.adapter.pixel_range == (0.0, 1.0) and inputs.adapter.output == "probability"
    np.testing.assert_array_equal(inputs.targets, exp.targets)
    np.testing.assert_array_equal(inputs.maps, exp.map)
    assert inputs.attribution.shape == exp.attribution.shape and inputs.method().name == "gradient"
    maps_inputs = metric_inputs(tiny_model, None, exp)
    assert maps_inputs.adapter.pixel_range == (0.0, 1.0) and maps_inputs.probabilities.shape == (3, 5)
    with pytest.raises(ValueError, match=r"ModelAdapter reads images in \(0.0, 255.0\)"):
        compute("insertion", tfxattr.as_model(tiny_model), None, exp)
    with pytest.raises(ValueError, match="ModelAdapter reads"):
        compute("insertion", tiny_model, None, exp, pixel_range=(0, 255))
    other = [(int(t) + 1) % 5 for t in exp.targets]
    with pytest.raises(ValueError, match="differ from the classes the Explanation explains"):
        compute("deletion", tiny_model, None, exp, targets=other)
    with pytest.raises(ValueError, match="needs the Explanation itself"):
        compute("completeness", tiny_model, tiny_images, exp.map)


def test_single_channel_arrays_are_maps_too(tiny_model, tiny_images):
    """An (N,H,W,1) attribution given as an array (a CAM's) is its signed map, as Explanation.map says."""
    cam = np.random.default_rng(1).normal(size=tiny_images.shape[:3] + (1,)).astype(np.float32)
    a = compute("insertion", tiny_model, tiny_images, cam, targets=0)
    b = compute("insertion", tiny_model, tiny_images, cam[..., 0], targets=0)
    np.testing.assert_array_equal(a.scores["insertion"], b.scores["insertion"])
