"""The extension recipes of CONTRIBUTING.md, each with a toy defined here in a few lines.

A toy path method registered in this file alone gets ``+idgi``, ``smooth``, the shared contract
and the evaluation runner without any other file being touched.
"""
import numpy as np
import pytest
import tensorflow as tf

import tfxattr
from tfxattr.checks import positive_int
from tfxattr.methods import METHODS, get_method, register, unregister
from tfxattr.methods.path import PathMethod
from tfxattr.paths import riemann_plan
from tfxattr.paths.aggregators import Riemann, register_aggregator, unregister_aggregator


class QuadraticPath:
    """``x(a) = b + a^2 (x - b)``: the straight line walked at a growing speed; left Riemann rule."""
    adaptive = False

    def __init__(self, steps):
        self.plan = riemann_plan(steps, "left")

    def points(self, x, b, point_ids, image_ids):
        a = tf.constant(self.plan.params[point_ids] ** 2, tf.float32)[:, None, None, None]
        return b + a * (x - b)

    def deltas(self, x, b, seg_ids, image_ids, points=None):
        p = self.plan
        step = p.params[p.seg_end[seg_ids]] ** 2 - p.params[p.seg_start[seg_ids]] ** 2
        return tf.constant(step, tf.float32)[:, None, None, None] * (x - b)


class QuadraticIG(PathMethod):
    name = "quadratic_ig"
    summary = "IG along the straight line with quadratic speed"
    defaults = {"aggregator": "riemann", "steps": 20, "baseline": "black"}

    def validate(self):
        super().validate()
        positive_int(self.options["steps"], "steps")

    def make_path(self, evaluator, images):
        return QuadraticPath(self.options["steps"])


@pytest.fixture(scope="module", autouse=True)
def toy_method():
    register("quadratic_ig", QuadraticIG)
    yield
    unregister("quadratic_ig")


@pytest.fixture(scope="module")
def model_and_images():
    from tests.helpers import build_tiny_cnn

    images = np.random.default_rng(5).uniform(0, 255, (3, 16, 16, 3)).astype(np.float32)
    return build_tiny_cnn(), images


def test_toy_path_method_gets_its_idgi_name_and_one_identity():
    assert "quadratic_ig+idgi" in METHODS
    by_name, by_option = get_method("quadratic_ig+idgi"), get_method("quadratic_ig", aggregator="idgi")
    assert by_name.name == by_option.name == "quadratic_ig+idgi"
    assert by_name.changed == by_option.changed == {}


@pytest.mark.parametrize("name", ["quadratic_ig", "quadratic_ig+idgi"])
def test_toy_path_method_passes_the_shared_contract(name, request):
    import tests.test_contract as contract

    contract.test_method_contract(name, request)
    contract.test_method_rejects_bad_input(name, request)


def test_toy_path_method_is_a_path_integral(model_and_images):
    """Any path from the baseline gives IG's completeness; IDGI's is exact at any number of steps."""
    model, images = model_and_images
    adapter = tfxattr.as_model(model)
    targets = np.array([0, 3, 1])
    gap = (adapter.values(images, targets) - adapter.values(np.zeros_like(images), targets)).numpy()
    idgi = tfxattr.explain(model, images, "quadratic_ig+idgi", targets=targets, steps=5).attribution
    np.testing.assert_allclose(idgi.reshape(3, -1).sum(1), gap, rtol=1e-4)
    riemann = tfxattr.explain(model, images, "quadratic_ig", targets=targets, steps=400).attribution
    np.testing.assert_allclose(riemann.reshape(3, -1).sum(1), gap, rtol=2e-2)


def test_toy_path_method_is_smoothed_by_smooth(model_and_images):
    model, images = model_and_images
    smooth = tfxattr.explain(model, images, "smooth:inner=quadratic_ig+idgi", targets=1, inner_options={"steps": 4},
                             samples=2, seed=0)
    plain = tfxattr.explain(model, images, "quadratic_ig+idgi", targets=1, steps=4)
    assert smooth.method == "smooth" and smooth.options["inner"] == "quadratic_ig+idgi"
    assert smooth.attribution.shape == plain.attribution.shape and not np.allclose(smooth.attribution,
                                                                                   plain.attribution)


def test_toy_path_method_runs_in_the_evaluation_runner(tmp_path):
    from tfxattr.evaluation import evaluate, read_records

    run = evaluate("shapes:3", ["demo"], ["quadratic_ig+idgi:steps=4", "smooth:inner=quadratic_ig,samples=2"],
                   ["insertion"], tmp_path, progress=False, log=lambda msg: None)
    records = [r for r in read_records(run.store) if r["kind"] == "result"]
    assert {r["method"] for r in records} == {"quadratic_ig+idgi:steps=4", "smooth:inner=quadratic_ig,samples=2"}
    assert all(np.isfinite(r["scores"]["insertion"]["insertion"]) for r in records)


class AbsRiemann(Riemann):
    """A toy aggregator: the path integral of |g * delta| (how much each feature moved f, either way)."""
    name = "abs"

    def contribution(self, gradients, deltas):
        return tf.abs(super().contribution(gradients, deltas))


@pytest.fixture
def toy_aggregator():
    register_aggregator(AbsRiemann)
    yield
    unregister_aggregator("abs")


@pytest.mark.parametrize("name", ["ig+abs", "blur_ig+abs", "quadratic_ig+abs"])
def test_toy_aggregator_works_on_every_path_method(name, toy_aggregator, model_and_images, request):
    import tests.test_contract as contract

    contract.test_method_contract(name, request)
    model, images = model_and_images
    base = name.split("+")[0]
    summed = tfxattr.explain(model, images, name, targets=2, steps=4)
    plain = tfxattr.explain(model, images, base, targets=2, steps=4)
    assert summed.method == name and get_method(base, aggregator="abs").name == name
    assert np.all(summed.attribution >= 0)
    # same path and Riemann weights: |sum of terms| <= sum of |terms|, feature by feature
    assert np.all(summed.attribution * (1 + 1e-5) + 1e-9 >= np.abs(plain.attribution))


class HalfIDGI(Riemann):
    """A toy aggregator that needs f-values: half of IDGI's term. It subclasses Riemann (not IDGI) and says
    what it needs only through its declaration, so a path that tested the aggregator's name or class would
    skip the f-values (and the segment ends) it needs."""
    name = "half_idgi"
    needs_values = True
    needs_delta = False

    def contribution(self, gradients, deltas=None):
        from tfxattr.paths.aggregators import IDGI

        return 0.5 * IDGI().contribution(gradients)


@pytest.fixture
def value_aggregator():
    register_aggregator(HalfIDGI)
    yield
    unregister_aggregator("half_idgi")


@pytest.mark.parametrize("base, options", [("ig", {"steps": 4}), ("guided_ig", {"steps": 4}),
                                           ("blur_ig", {"steps": 4}), ("path", {})])
def test_an_aggregator_that_needs_values_works_on_every_path(base, options, value_aggregator, model_and_images):
    """Every path reads the aggregator's declared needs: a toy f-value aggregator gets IDGI's rule, grid and
    gradient side (half IDGI's map), through explain() and through the exported graph alike."""
    model, images = model_and_images
    if base == "path":
        options = {"path": np.linspace(0, 1, 5, dtype=np.float32)[:, None, None, None] * images[0][None]}
        images = images[:1]
    half = tfxattr.explain(model, images, f"{base}+half_idgi", targets=2, progress=False, **options)
    idgi = tfxattr.explain(model, images, f"{base}+idgi", targets=2, progress=False, **options)
    np.testing.assert_allclose(half.attribution, 0.5 * idgi.attribution, rtol=1e-5, atol=1e-9)
    if base != "path":  # a user-given array path has no graph form
        served = tfxattr.explainer_model(model, f"{base}+half_idgi", **options)
        targets = np.full(len(images), 2, np.int32)
        np.testing.assert_allclose(served(images, targets)["attributions"].numpy(), half.attribution, rtol=1e-5,
                                   atol=1e-9)


def test_unknown_aggregator_is_named():
    with pytest.raises(ValueError, match="unknown method 'ig\\+abs'"):
        get_method("ig+abs")
    with pytest.raises(ValueError, match="aggregator must be one of"):
        get_method("ig", aggregator="abss")


class GradientTimesInput(tfxattr.Method):
    """CONTRIBUTING.md's method recipe, verbatim: gradient x input (Shrikumar et al. 2016, Eq. 1)."""
    name = "gxi"
    summary = "gradient times input"
    defaults = {"scale": 1.0}

    def validate(self):
        from tfxattr.checks import positive_float

        positive_float(self.options["scale"], "scale")

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        from tfxattr.batching import as_rows, chunk_map, finish, rows

        x, t = as_rows(images, targets)
        (g,) = chunk_map(lambda x, t: (evaluator.values_and_gradients(x, t)[1],), [tf.float32], rows(x),
                         evaluator.batch_size, x, t)
        return finish(self.options["scale"] * g * x)


def test_the_method_recipe_works_through_explain_and_export(model_and_images):
    """A method written as the recipe says is exported with no code of its own: the signature equals explain()."""
    register("gxi", GradientTimesInput)
    try:
        model, images = model_and_images
        targets = np.array([2, 0, 1], np.int32)
        exp = tfxattr.explain(model, images, "gxi", targets=targets, scale=2.0, batch_size=2, progress=False)
        gradient = tfxattr.explain(model, images, "gradient", targets=targets, times_input=True, progress=False)
        np.testing.assert_allclose(exp.attribution, 2.0 * gradient.attribution, rtol=1e-5, atol=1e-9)
        served = tfxattr.explainer_model(model, "gxi", scale=2.0, batch_size=2)(images, targets)
        np.testing.assert_allclose(served["attributions"].numpy(), exp.attribution, rtol=1e-6, atol=1e-9)
    finally:
        unregister("gxi")
