"""One answer through every door (issue 19): ``explain()``, ``compute()``, ``tfxattr eval`` and an exported
signature run the same code, so every registered method gives the same map and the same scores whichever
door a user takes. CNN methods run on the trained demo model, ViT methods on the trained demo ViT."""
import numpy as np
import pytest

import tfxattr
from tfxattr.evaluation import EvaluationConfig, evaluate, load_results
from tfxattr.methods import METHODS
from tfxattr.methods.base import find_spec
from tfxattr.metrics import compute
from tfxattr.serving import NotExportable, explainer_model

DATA = "shapes:3"
METRIC = "insertion"
# every door computes in float32; the eager and traced loops add the same terms in the same order, so a
# door may differ from another only by float32 rounding of a few operations
SAME_MAP = 1e-5  # relative L2 distance between two doors' attributions
SAME_SCORE = 1e-6
# small options so that every method runs in about a second; a spec string, so that the eval door takes them
FAST = {"steps": 3, "ascent_steps": 2, "samples": 2, "top_channels": 8, "patch": 16, "stride": 16}
WRAPPED = {"smooth": "gradient", "xrai": "gradient"}  # wrappers around a cheap method
ARRAY_ONLY = {"path"}  # its option is an array of points: no spec string (eval door) can carry it


def array_only(name):
    return find_spec(name).cls.name in ARRAY_ONLY


def model_for(name):
    return "demo_vit" if find_spec(name).cls.architecture == "vit" else "demo"


def options_for(name, images=None):
    defaults = find_spec(name).defaults
    opts = {k: v for k, v in FAST.items() if k in defaults}
    if array_only(name) and images is None:
        return opts
    if name == "rise":
        opts["samples"] = 64  # RISE's map is a mean over masks: a few dozen keep it non-degenerate
    if name in WRAPPED:
        opts["inner"] = WRAPPED[name]
    if array_only(name):
        opts["path"] = np.linspace(0, 1, 4, dtype=np.float32)[:, None, None, None, None] * images[None]
        opts["path"] = np.moveaxis(opts["path"], 0, 1)
    return opts


def spec_for(name):
    opts = options_for(name)
    return name + (":" + ",".join(f"{k}={v}" for k, v in opts.items()) if opts else "")


def as_given(name, options):
    """``(method, keywords)`` as a user gives them to explain() and explainer_model(): the name and keyword
    options, or for a wrapper its spec text (its ``method`` option is not a keyword there: the door's own
    ``method`` argument is the method explained)."""
    return (spec_for(name), {}) if "method" in options else (name, options)


@pytest.fixture(scope="module")
def data():
    from tfxattr.demo import make_demo_data

    d = make_demo_data(3, seed=1)  # what "shapes:3" holds
    return np.asarray(d["images"], np.float32), np.asarray(d["masks"])


@pytest.fixture(scope="module")
def models(demo_model, demo_vit):
    """The trained demo CNN and ViT, loaded once (conftest's session objects): every door gets the same model
    object (and its adapters, cached on the object), so no door pays for loading and tracing the model again."""
    return {"demo": demo_model, "demo_vit": demo_vit}


@pytest.fixture(scope="module")
def stored(models, tmp_path_factory):
    """The eval door: one run of every registered method (but ARRAY_ONLY) on DATA, scored by METRIC."""
    out = {}
    for model in ("demo", "demo_vit"):
        specs = [spec_for(n) for n in sorted(METHODS) if not array_only(n) and model_for(n) == model]
        folder = tmp_path_factory.mktemp(f"doors_{model}")
        evaluate(DATA, [models[model]], specs, [METRIC], folder, config=EvaluationConfig(targets="predicted"),
                 progress=False, log=lambda msg: None)
        for rec in load_results(folder):
            out[(rec["method"], rec["image"])] = (rec["target"], rec["scores"][METRIC][METRIC])
    return out


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_door_gives_one_answer(name, data, stored, models):
    images, _ = data
    model = models[model_for(name)]
    options = options_for(name, images)
    given, keywords = as_given(name, options)
    explanation = tfxattr.explain(model, images, given, progress=False, seed=0, **keywords)
    targets = np.asarray(explanation.targets)

    # compute(): given the Explanation, or its maps and targets
    by_explanation = compute(METRIC, model, images, explanation).scores[METRIC]
    by_maps = compute(METRIC, model, images, explanation.map, targets=targets).scores[METRIC]
    np.testing.assert_allclose(by_maps, by_explanation, atol=SAME_SCORE)

    # tfxattr eval: the stored targets and scores of the same images
    if not array_only(name):
        label = tfxattr.evaluation.shards.method_label(spec_for(name))
        rows = [stored[(label, f"{i:06d}")] for i in range(len(images))]
        np.testing.assert_array_equal([t for t, _ in rows], targets)
        np.testing.assert_allclose([s for _, s in rows], by_explanation, atol=SAME_SCORE)

    # export: the traced method, or a refusal that gives the method's declared reason
    method = tfxattr.get_method(name, **options)
    reason = method.export_refusal()
    if reason:
        with pytest.raises(NotExportable, match="cannot be exported"):
            explainer_model(model, given, seed=0, **keywords)
        return
    served = explainer_model(model, given, seed=0, **keywords)(images, targets.astype(np.int32))
    got, want = served["attributions"].numpy(), explanation.attribution
    assert got.shape == want.shape
    assert np.linalg.norm(got - want) <= SAME_MAP * max(np.linalg.norm(want), 1e-30)
    np.testing.assert_allclose(served["maps"].numpy(), explanation.map, rtol=1e-4,
                               atol=SAME_MAP * float(np.abs(explanation.map).max()))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_declares_whether_it_exports(name):
    """A class either has a graph form (not_exportable == "") or says why not, in words."""
    reason = find_spec(name).cls.not_exportable
    assert isinstance(reason, str)
    assert reason == "" or len(reason.split()) >= 5
