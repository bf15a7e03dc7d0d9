"""Paths and aggregators in isolation."""
import numpy as np
import pytest
import tensorflow as tf

import tfxattr
from tfxattr.paths import RULES, BlurPath, riemann_plan
from tfxattr.paths.aggregators import IDGI, MaxGradient, Riemann, get_aggregator


@pytest.mark.parametrize("rule", RULES)
def test_riemann_weights_sum_to_one(rule):
    plan = riemann_plan(7, rule)
    assert plan.seg_weight.sum() == pytest.approx(1.0)
    assert plan.params.min() >= 0 and plan.params.max() <= 1


def test_rules_are_exact_for_a_linear_model():
    import keras

    inp = keras.Input((4, 4, 1))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(inp)))
    x = np.random.default_rng(0).uniform(0, 255, (1, 4, 4, 1)).astype(np.float32)
    w = model.layers[-1].get_weights()[0][:, 1].reshape(4, 4, 1)
    for rule in ("left", "right", "midpoint", "trapezoid"):
        got = tfxattr.explain(model, x, "ig", targets=1, steps=5, rule=rule).attribution[0]
        np.testing.assert_allclose(got, w * x[0], rtol=1e-4, atol=1e-4)


def test_blur_path_runs_from_blurred_image_to_input():
    path = BlurPath(steps=4, blur_sigma=8.0)
    assert path.sigmas[0] == 0 and path.sigmas[-1] == 8.0
    np.testing.assert_array_equal(path.plan.seg_start, [1, 2, 3, 4])
    np.testing.assert_array_equal(path.plan.seg_end, [0, 1, 2, 3])


def test_idgi_contribution_is_a_distribution_and_zero_safe():
    g = tf.constant(np.random.default_rng(0).normal(size=(2, 3, 3, 1)), tf.float32)
    u = IDGI().contribution(tf.concat([g, tf.zeros((1, 3, 3, 1))], 0)).numpy()
    np.testing.assert_allclose(u[:2].sum((1, 2, 3)), 1.0, rtol=1e-12)
    assert np.all(u[2] == 0) and np.all(np.isfinite(u))


class SquareEvaluator:
    """f(x) = sum(w x^2) / 2 per row, df/dx = w x: closed-form values and gradients, eager or traced."""
    batch_size = 2

    def __init__(self, w):
        self.w = tf.constant(w, tf.float32)

    def values(self, x, targets):
        return tf.reduce_sum(self.w * x * x, axis=[1, 2, 3]) / 2.0

    def values_and_gradients(self, x, targets):
        return self.values(x, targets), self.w * x


@pytest.mark.parametrize("rule", ["left", "right", "midpoint", "saliency"])
@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_engine_settles_idgi_segments_with_their_end_values(rule, batch_size):
    """Every segment gets ``g^2/|g|^2 (f(end) - f(start))`` whatever chunk its end value arrives in (carried
    rows), the sum is f(x) - f(b) exactly, and the traced engine (export) gives the same numbers."""
    from tfxattr.paths import StraightLinePath
    from tfxattr.paths.engine import integrate

    rng = np.random.default_rng(1)
    w = rng.uniform(0.5, 2.0, (1, 2, 2, 1)).astype(np.float32)
    x = rng.uniform(1, 3, (3, 2, 2, 1)).astype(np.float32)
    b = np.zeros_like(x)
    ev, path, t = SquareEvaluator(w), StraightLinePath(5, rule), np.zeros(3, np.int32)
    got = integrate(ev, path, IDGI(), x, b, t, batch_size)
    plan, want = path.plan, np.zeros(x.shape)
    for i in range(3):
        pts = b[i] + plan.params[:, None, None, None] * (x[i] - b[i])
        f = (w[0] * pts * pts).sum((1, 2, 3)) / 2
        for s in np.flatnonzero(plan.has_ends):
            g = w[0] * pts[plan.seg_point[s]]
            if (g * g).sum() > 0:  # a zero gradient (at the zero baseline) contributes nothing
                want[i] += g * g / (g * g).sum() * (f[plan.seg_end[s]] - f[plan.seg_start[s]])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    if plan.params[plan.seg_point].min() > 0:  # else a first gradient at the zero baseline drops a segment
        np.testing.assert_allclose(got.sum((1, 2, 3)), (w * x * x).sum((1, 2, 3)) / 2, rtol=1e-5)
    traced = tf.function(lambda x, t: integrate(ev, path, IDGI(), x, tf.zeros_like(x), t, batch_size))
    np.testing.assert_allclose(traced(tf.constant(x), tf.constant(t)).numpy(), got, rtol=1e-6, atol=1e-7)


def test_max_and_riemann_aggregators():
    """GGIG's maximum keeps, per feature, the largest of the gradients along the walk; the Riemann sum is
    IG's quadrature (exact for a quadratic f with the trapezoid rule: the integrand is linear)."""
    from tfxattr.paths import AscentPath, StraightLinePath
    from tfxattr.paths.engine import integrate

    w = np.array([1.0, -1.0, 2.0, 0.5], np.float32).reshape(1, 2, 2, 1)
    x = np.ones((2, 2, 2, 1), np.float32)
    x[1] *= 2
    ev, t = SquareEvaluator(w), np.zeros(2, np.int32)
    path = AscentPath(starts=1, steps=3, lr=0.5)
    got = integrate(ev, path, MaxGradient(), x, np.zeros_like(x), t, 1)
    z, seen = x.copy(), []
    for _ in range(3):
        seen.append(w * z)
        z = z + 0.5 * w * z
    np.testing.assert_allclose(got, np.max(seen, axis=0), rtol=1e-6)
    got = integrate(ev, StraightLinePath(3, "trapezoid"), Riemann(), x, np.zeros_like(x), t, 2)
    np.testing.assert_allclose(got, w * x * x / 2, rtol=1e-6)
    with pytest.raises(ValueError, match="aggregator"):
        get_aggregator("mean")


def test_user_path_matches_ig_and_rejects_non_images(tiny_model, tiny_images):
    alphas = np.linspace(0, 1, 9, dtype=np.float32)[:, None, None, None]
    for i, img in enumerate(tiny_images):
        path = alphas * img[None]
        ours = tfxattr.explain(tiny_model, img, "path", targets=1, path=path).attribution
        ig = tfxattr.explain(tiny_model, img, "ig", targets=1, steps=8, rule="left").attribution
        np.testing.assert_allclose(ours, ig, rtol=1e-4, atol=1e-6)
        idgi = tfxattr.explain(tiny_model, img, "path+idgi", targets=1, path=path).attribution
        np.testing.assert_allclose(idgi, tfxattr.explain(tiny_model, img, "ig+idgi", targets=1, steps=8).attribution,
                                   rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="path must be an array of images"):
        tfxattr.explain(tiny_model, tiny_images[0], "path", path=np.zeros((5, 8, 8, 3)))
    with pytest.raises(ValueError, match="needs the option path"):
        tfxattr.explain(tiny_model, tiny_images[0], "path")


def test_ig_rejects_trapezoid_with_idgi(tiny_model, tiny_images):
    with pytest.raises(ValueError, match="trapezoid"):
        tfxattr.explain(tiny_model, tiny_images, "ig+idgi", rule="trapezoid")
    with pytest.raises(ValueError, match="steps"):
        tfxattr.explain(tiny_model, tiny_images, "ig", steps=0)


# --------------------------------------------------------------------------- a path defined in a test
class QuadraticPath:
    """``b + a^2 (x - b)``, a in [0, 1]: the straight line, walked ever faster. A few lines make a path."""
    adaptive = False

    def __init__(self, steps):
        self.plan = riemann_plan(steps, "left")  # gradient at each segment's left point

    def points(self, x, b, point_ids, image_ids):
        return b + tf.constant(self.plan.params[point_ids] ** 2, tf.float32)[:, None, None, None] * (x - b)

    def deltas(self, x, b, seg_ids, image_ids, points=None):
        a0, a1 = self.plan.params[self.plan.seg_start[seg_ids]], self.plan.params[self.plan.seg_end[seg_ids]]
        return tf.constant(a1 ** 2 - a0 ** 2, tf.float32)[:, None, None, None] * (x - b)


def test_a_toy_path_is_integrated_by_the_engine(tiny_model, tiny_images):
    from tfxattr.paths.engine import integrate

    adapter = tfxattr.as_model(tiny_model, batch_size=5)
    targets = np.array([0, 3, 1], np.int32)
    baselines = np.zeros_like(tiny_images)
    want = adapter.values(tiny_images, targets).numpy() - adapter.values(baselines, targets).numpy()
    idgi = integrate(adapter, QuadraticPath(6), get_aggregator("idgi"), tiny_images, baselines, targets, 5)
    np.testing.assert_allclose(idgi.reshape(3, -1).sum(1), want, rtol=1e-4)  # IDGI: exact at any step count
    riemann = integrate(adapter, QuadraticPath(400), get_aggregator("riemann"), tiny_images, baselines, targets, 64)
    ig = tfxattr.explain(tiny_model, tiny_images, "ig", targets=targets, steps=400).attribution
    assert np.abs(riemann - ig).max() < 1e-2 * np.abs(ig).max()  # the same line integral: IG
    coarse = integrate(adapter, QuadraticPath(4), get_aggregator("riemann"), tiny_images, baselines, targets, 5)
    assert np.abs(coarse - ig).max() > 1e-2 * np.abs(ig).max()  # ... which a 4-step Riemann sum misses


def test_the_engine_refuses_a_path_that_does_not_say_its_kind(tiny_model, tiny_images):
    from tfxattr.paths.engine import integrate

    class Undeclared(QuadraticPath):
        adaptive = None

    with pytest.raises(TypeError, match="adaptive = False"):
        integrate(tfxattr.as_model(tiny_model), Undeclared(3), get_aggregator("riemann"), tiny_images,
                  np.zeros_like(tiny_images), [0, 0, 0], 4)


def test_paths_implement_their_protocols():
    from tfxattr.models.contracts import AdaptivePath, Path, missing_members
    from tfxattr.paths import ArrayPath, AscentPath, GuidedPath, StraightLinePath

    fixed = [StraightLinePath(3), BlurPath(3), ArrayPath(np.zeros((3, 2, 2, 1)), 1, (2, 2, 1)), QuadraticPath(2)]
    for path in fixed:
        assert missing_members(path, Path) == [] and path.adaptive is False
    for path in (GuidedPath(3), AscentPath(2, 3, 0.1)):
        assert missing_members(path, AdaptivePath) == [] and path.adaptive is True
    assert not hasattr(ArrayPath(np.zeros((3, 2, 2, 1)), 1, (2, 2, 1)), "bind")  # image ids are arguments


def test_array_path_indexes_its_images_by_the_row_image_ids():
    from tfxattr.paths import ArrayPath

    arr = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2, 1, 1)  # 2 images, 3 points, 2x1x1
    path = ArrayPath(arr, 2, (2, 1, 1))
    pts = path.points(None, None, np.array([2, 0, 1]), np.array([1, 0, 1])).numpy()
    np.testing.assert_array_equal(pts, arr[[1, 0, 1], [2, 0, 1]])
    d = path.deltas(None, None, np.array([0, 1]), np.array([1, 0])).numpy()
    np.testing.assert_array_equal(d, arr[[1, 0], [1, 2]] - arr[[1, 0], [0, 1]])


def test_path_methods_declare_their_aggregators():
    from tfxattr.methods.ggig import GGIG
    from tfxattr.methods.guided_ig import GuidedIG

    assert tuple(GuidedIG.aggregators) == ("riemann", "idgi") and tuple(GGIG.aggregators) == ("max",)
    with pytest.raises(ValueError, match="aggregator"):
        GuidedIG(aggregator="max")
    with pytest.raises(ValueError, match="aggregator"):
        GGIG(aggregator="idgi")


def test_adaptive_mode_with_idgi_is_complete_per_start(tiny_model, tiny_images):
    """Rows are (image, start) pairs: IDGI sums, over an image's starts, f(last point) - f(first point)."""
    from tfxattr.paths import AscentPath
    from tfxattr.paths.engine import integrate

    adapter = tfxattr.as_model(tiny_model, batch_size=4)
    targets = np.array([2, 0, 4], np.int32)
    path = AscentPath(starts=3, steps=4, lr=3e5)
    got = integrate(adapter, path, get_aggregator("idgi"), tiny_images, np.zeros_like(tiny_images), targets, 4)
    want = np.zeros(3)
    for a in path.alphas:
        x = tf.constant(a * tiny_images, tf.float32)
        f0 = adapter.values(x, targets).numpy()
        for _ in range(path.steps):
            x = x + path.lr * adapter.values_and_gradients(x, targets)[1]
        want += adapter.values(x, targets).numpy() - f0
    np.testing.assert_allclose(got.reshape(3, -1).sum(1), want, rtol=1e-4)
    assert np.abs(want).min() > 1e-2  # the ascent moved every image


# --------------------------------------------------------------------------- issue 8 items 1, 3, 6; issue 9
def test_saliency_plan_gives_idgi_the_input_value():
    """PAIR's grid: ``steps`` points, ``steps - 1`` IDGI segments; the input (last point) is the gradient
    point of the end-less Riemann-only segment, so IDGI must evaluate it for its value alone."""
    plan = riemann_plan(5, "saliency")
    np.testing.assert_allclose(plan.params, np.linspace(0, 1, 5))
    np.testing.assert_array_equal(plan.has_ends, [True, True, True, True, False])
    np.testing.assert_array_equal(plan.value_only_points(), [4])
    for rule in ("left", "right", "midpoint"):  # every other end is a gradient point or already listed
        plan = riemann_plan(4, rule)
        used = set(plan.seg_point[plan.has_ends]) | set(plan.value_only_points())
        assert used >= set(plan.seg_start) | set(plan.seg_end)


def test_blur_path_gradient_sides():
    pair = BlurPath(steps=4, blur_sigma=8.0)
    idgi = BlurPath(steps=4, blur_sigma=8.0, gradient_at="blurred_side")
    np.testing.assert_array_equal(pair.plan.seg_point, [0, 1, 2, 3])  # sigma_0 .. sigma_3, as PAIR
    np.testing.assert_array_equal(idgi.plan.seg_point, [1, 2, 3, 4])  # each segment's blurred end
    np.testing.assert_array_equal(pair.plan.value_only_points(), [4])  # the fully blurred image
    np.testing.assert_array_equal(idgi.plan.value_only_points(), [0])  # the input
    with pytest.raises(ValueError, match="gradient_at.*did you mean 'blurred_side'"):
        BlurPath(steps=4, gradient_at="blured_side")


def test_saliency_points_are_built_as_pair_builds_them():
    """PAIR: ``x_baseline + alpha * x_diff`` with a float64 alpha (NumPy 2 keeps float64), cast to float32."""
    from tfxattr.paths import StraightLinePath

    rng = np.random.default_rng(3)
    x = rng.uniform(0, 255, (1, 6, 6, 3)).astype(np.float32)
    b = rng.uniform(0, 255, (1, 6, 6, 3)).astype(np.float32)
    steps = 25
    ids = np.arange(steps)
    x_diff = x[0] - b[0]
    want = np.stack([(b[0] + alpha * x_diff).astype(np.float32) for alpha in np.linspace(0, 1, steps)])
    got = StraightLinePath(steps, "saliency").points(tf.constant(np.repeat(x, steps, 0)),
                                                       tf.constant(np.repeat(b, steps, 0)), ids, ids * 0).numpy()
    np.testing.assert_array_equal(got, want)
    float32_points = np.float32(np.linspace(0, 1, steps))[:, None, None, None] * x_diff + b[0]
    assert np.any(float32_points != want)  # the float32 construction is not PAIR's


def test_blur_ig_one_riemann_step_is_refused_not_zero(tiny_model, tiny_images):
    """Issue 9: steps=1 on PAIR's side took the only gradient at sigma 0 (zero blur derivative)."""
    with pytest.raises(ValueError, match="steps must be >= 2"):
        tfxattr.explain(tiny_model, tiny_images, "blur_ig", steps=1)
    for name, opts in (("blur_ig", {"gradient_at": "blurred_side"}), ("blur_ig+idgi", {}),
                       ("blur_ig+idgi", {"gradient_at": "blurred_side"})):
        attr = tfxattr.explain(tiny_model, tiny_images, name, steps=1, blur_sigma=4.0, **opts).attribution
        assert np.all(np.abs(attr).reshape(3, -1).max(1) > 0), (name, opts)
    with pytest.raises(ValueError, match="gradient_at"):
        tfxattr.explain(tiny_model, tiny_images, "blur_ig", gradient_at="input")


def test_blur_ig_default_gradient_side_follows_the_aggregator():
    """Riemann: PAIR's side; IDGI: the blurred side (the measured choice, see BlurIG's docstring)."""
    from tfxattr.methods import get_method

    assert get_method("blur_ig").gradient_at == "input_side"
    assert get_method("blur_ig+idgi").gradient_at == "blurred_side"
    assert get_method("blur_ig+idgi", gradient_at="input_side").gradient_at == "input_side"
    path = get_method("blur_ig+idgi", steps=3).make_path(None, None)
    np.testing.assert_array_equal(path.plan.seg_point, [1, 2, 3])


# --------------------------------------------------------------------------- issue 15: quadrature and schedules
def test_gauss_legendre_is_exact_for_polynomials_of_degree_2n_minus_1():
    """n nodes integrate a^k on [0, 1] exactly for k <= 2n - 1 (Numerical Recipes Sec. 4.6), not for 2n."""
    plan = riemann_plan(5, "gausslegendre")
    for k in range(10):
        np.testing.assert_allclose(np.sum(plan.seg_weight * plan.params ** k), 1.0 / (k + 1), rtol=1e-12)
    assert abs(np.sum(plan.seg_weight * plan.params ** 10) - 1.0 / 11) > 1e-8
    assert not plan.has_ends.any()


def _completeness_error(model, images, targets, **options):
    adapter = tfxattr.as_model(model)
    want = adapter.values(images, targets).numpy() - adapter.values(0 * images, targets).numpy()
    got = tfxattr.explain(model, images, "ig", targets=targets, progress=False, **options).attribution
    return np.abs(got.reshape(len(images), -1).sum(1) / want - 1)


def test_gauss_legendre_beats_the_trapezoid_at_16_gradients_on_a_smooth_model(tiny_model, tiny_images):
    """On a smooth (tanh) network f is analytic along the line and 16 nodes leave less error than 16
    trapezoid steps (17 gradients). On the ReLU demo model f' is piecewise constant, the order of the rule
    buys nothing and Gauss-Legendre is not better (README, bench/results_time_to_faithful.md)."""
    targets = np.array([0, 3, 1])
    gl = _completeness_error(tiny_model, tiny_images, targets, steps=16, rule="gausslegendre")
    trapezoid = _completeness_error(tiny_model, tiny_images, targets, steps=16, rule="trapezoid")
    assert np.all(gl < trapezoid / 10), (gl, trapezoid)


def _sharp_model():
    """f_0 = 5 tanh(100 a - 67) along the line x(a) = 200 a from black: one steep rise at a = 0.67."""
    import keras

    inp = keras.Input((4, 4, 3))
    h = keras.layers.Dense(1, activation="tanh")(keras.layers.GlobalAveragePooling2D()(inp))
    model = keras.Model(inp, keras.layers.Dense(2)(h))
    model.layers[2].set_weights([np.full((3, 1), 1 / 6), np.array([-67.0])])
    model.layers[3].set_weights([np.array([[5.0, -5.0]]), np.zeros(2)])
    return model, np.full((1, 4, 4, 3), 200.0, np.float32)


def test_adaptive_schedule_puts_the_gradients_where_f_bends_and_stays_in_budget(monkeypatch):
    from tfxattr.models import ModelAdapter

    model, image = _sharp_model()
    rows = []
    real = ModelAdapter.values_and_gradients

    def counting(self, x, targets, batch_size=None):
        rows.append(len(x))
        return real(self, x, targets, batch_size)
    monkeypatch.setattr(ModelAdapter, "values_and_gradients", counting)
    for name, rule, budget in (("ig", "trapezoid", 17), ("ig", "left", 16), ("ig+idgi", "left", 16),
                               ("ig+idgi", "midpoint", 16)):
        rows.clear()
        tfxattr.explain(model, image, name, targets=0, steps=16, rule=rule, schedule="adaptive", progress=False)
        assert sum(rows) == budget, (name, rule, sum(rows))  # the coarse pass takes no gradient
    path = tfxattr.methods.get_method("ig", schedule="adaptive")  # knots crowd around a = 0.67
    adapter = tfxattr.as_model(model)
    knots = path.fit_path(adapter, image, 0 * image, np.array([0])).knots[0]
    assert np.sum((knots > 0.6) & (knots < 0.75)) > 0.5 * len(knots)
    # time to a faithful map: fewer gradients to 1 % completeness than uniform steps
    def steps_to_one_percent(**options):
        return next(s for s in LADDER if _completeness_error(model, image, [0], steps=s, **options)[0] <= 0.01)
    adaptive, uniform = steps_to_one_percent(schedule="adaptive"), steps_to_one_percent()
    assert adaptive < uniform, (adaptive, uniform)


LADDER = (8, 16, 32, 64, 128, 256)


@pytest.mark.parametrize("rule", ["left", "midpoint"])
def test_adaptive_idgi_is_exactly_complete(demo_model, demo_data, rule):
    images = demo_data["images"][:2].astype(np.float32)
    exp = tfxattr.explain(demo_model, images, "ig+idgi", steps=12, rule=rule, schedule="adaptive", progress=False)
    adapter = tfxattr.as_model(demo_model)
    want = adapter.values(images, exp.targets).numpy() - adapter.values(0 * images, exp.targets).numpy()
    np.testing.assert_allclose(exp.attribution.reshape(2, -1).sum(1), want, rtol=1e-4)


def test_quadrature_and_schedule_are_validated(tiny_model, tiny_images):
    with pytest.raises(ValueError, match="gausslegendre.*idgi"):
        tfxattr.explain(tiny_model, tiny_images, "ig+idgi", rule="gausslegendre")
    with pytest.raises(ValueError, match="schedule must be one of.*did you mean 'adaptive'"):
        tfxattr.explain(tiny_model, tiny_images, "ig", schedule="adaptiv")
    with pytest.raises(ValueError, match="schedule='adaptive'.*rule"):
        tfxattr.explain(tiny_model, tiny_images, "ig", schedule="adaptive", rule="gausslegendre")
    from tfxattr.serving import NotExportable, explainer_model

    with pytest.raises(NotExportable, match="schedule='adaptive'"):
        explainer_model(tiny_model, "ig", schedule="adaptive")
