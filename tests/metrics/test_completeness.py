"""The completeness sanity metric: sum of attributions vs f(x) - f(path start), against a direct computation."""
import numpy as np
import pytest

import tfxattr
from tfxattr.blur import gaussian_blur
from tfxattr.metrics import METRICS, compute


def direct_errors(model, exp, start, output="logit"):
    adapter = tfxattr.as_model(model, output=output)
    f_x, f_start = (adapter.values(x, exp.targets).numpy().astype(np.float64) for x in (exp.images, start))
    delta = f_x - f_start
    err = np.abs(exp.attribution.reshape(len(start), -1).astype(np.float64).sum(1) - delta)
    return err, err / np.abs(delta), delta


@pytest.mark.parametrize("method,options", [("ig", {"steps": 4}), ("ig", {"steps": 4, "baseline": "white"}),
                                            ("guided_ig", {"steps": 4})])
def test_completeness_equals_the_direct_computation(tiny_model, tiny_images, method, options):
    exp = tfxattr.explain(tiny_model, tiny_images, method, progress=False, **options)
    res = compute("completeness", tiny_model, None, exp)
    start = np.full_like(tiny_images, 255.0 if options.get("baseline") == "white" else 0.0)
    abs_error, rel_error, delta = direct_errors(tiny_model, exp, start)
    np.testing.assert_allclose(res.scores["abs_error"], abs_error, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.scores["rel_error"], rel_error, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.extras["delta"], delta, rtol=1e-6)
    assert not res.higher_is_better["abs_error"] and not res.higher_is_better["rel_error"]


def test_riemann_error_shrinks_with_steps_and_idgi_is_exact(tiny_model, tiny_images):
    errors = [compute("completeness", tiny_model, None,
                      tfxattr.explain(tiny_model, tiny_images, "ig", steps=s, progress=False)).scores["rel_error"]
              for s in (2, 32)]
    assert np.all(errors[1] < errors[0])
    idgi = tfxattr.explain(tiny_model, tiny_images, "ig+idgi", steps=3, progress=False)
    np.testing.assert_allclose(compute("completeness", tiny_model, None, idgi).scores["rel_error"], 0.0, atol=1e-4)


@pytest.mark.parametrize("sqrt", [False, True])
def test_blur_ig_starts_at_its_most_blurred_image(tiny_model, tiny_images, sqrt):
    exp = tfxattr.explain(tiny_model, tiny_images, "blur_ig+idgi", steps=4, blur_sigma=9.0, sqrt=sqrt, progress=False)
    res = compute("completeness", tiny_model, None, exp)
    blurred = gaussian_blur(tiny_images, 3.0 if sqrt else 9.0).numpy()
    np.testing.assert_allclose(res.scores["abs_error"], direct_errors(tiny_model, exp, blurred)[0], atol=1e-5)
    np.testing.assert_allclose(res.scores["rel_error"], 0.0, atol=1e-4)


def test_a_custom_path_starts_at_its_first_point_and_probabilities_are_checked(tiny_model, tiny_images):
    ramp = np.linspace(0.0, 1.0, 5)[:, None, None, None, None] * tiny_images[None]  # (S+1, N, H, W, C)
    exp = tfxattr.explain(tiny_model, tiny_images, "path+idgi", path=ramp.transpose(1, 0, 2, 3, 4), progress=False,
                          output="probability")
    res = compute("completeness", tiny_model, None, exp)
    assert res.options["output"] == "probability"
    np.testing.assert_allclose(res.scores["abs_error"],
                               direct_errors(tiny_model, exp, np.zeros_like(tiny_images), "probability")[0], atol=1e-6)


def test_methods_without_a_path_need_a_baseline(tiny_model, tiny_images):
    exp = tfxattr.explain(tiny_model, tiny_images, "gradcam", progress=False)
    with pytest.raises(ValueError, match="method 'gradcam' has no path start.*pass baseline="):
        compute("completeness", tiny_model, None, exp)
    ggig = tfxattr.explain(tiny_model, tiny_images[:1], "ggig", steps=2, ascent_steps=2, progress=False)
    with pytest.raises(ValueError, match="method 'ggig' has no path start"):
        compute("completeness", tiny_model, None, ggig)
    grad = tfxattr.explain(tiny_model, tiny_images, "gradient", progress=False)
    res = compute("completeness", tiny_model, None, grad, baseline="black")
    np.testing.assert_allclose(res.scores["abs_error"], direct_errors(tiny_model, grad, np.zeros_like(tiny_images))[0],
                               rtol=1e-5)
    assert res.options["baseline"] == "black"


def test_completeness_interface_errors(tiny_model, tiny_images):
    assert METRICS["completeness"].consumes == "explanation"
    exp = tfxattr.explain(tiny_model, tiny_images, "ig", steps=2, progress=False)
    with pytest.raises(ValueError, match="needs the Explanation itself as maps"):
        compute("completeness", tiny_model, tiny_images, exp.attribution)
    with pytest.raises(ValueError, match="baseline must be"):
        compute("completeness", tiny_model, None, exp, baseline="grey")
    with pytest.raises(ValueError, match="model is required"):
        compute("completeness", None, None, exp)
    same = tfxattr.Explanation(attribution=np.zeros_like(tiny_images), targets=exp.targets, method="ig",
                               options={"steps": 2}, images=np.zeros_like(tiny_images))
    res = compute("completeness", tiny_model, None, same)  # black images, black baseline: f(x) = f(x')
    assert set(res.skipped["rel_error"]) == {0, 1, 2} and np.all(res.scores["abs_error"] == 0)


def test_an_explanation_made_in_another_pixel_range_is_scored_in_that_range(tiny_model, tiny_images):
    """explain(..., pixel_range=(0, 1)) on a 0..255 model: the metric rebuilds the model in the
    Explanation's range, so IDGI stays exactly complete (not scored as if the images were 0..255)."""
    exp = tfxattr.explain(tiny_model, tiny_images / 255.0, "ig+idgi", steps=8, pixel_range=(0, 1), progress=False)
    assert np.all(compute("completeness", tiny_model, None, exp).scores["rel_error"] < 1e-4)
