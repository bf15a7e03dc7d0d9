"""The model-source registry: one place recognises every kind of model, in order, with clear errors."""
import numpy as np
import pytest

import tfxattr
from tfxattr.models import sources


def test_each_kind_is_recognised_by_its_source(tiny_model, tmp_path):
    path = tmp_path / "m.keras"
    tiny_model.save(path)
    assert sources.find_source(tiny_model).name == "keras_model"
    assert sources.find_source("demo").name == "demo"
    assert sources.find_source(str(path)).name == "keras_file"
    assert sources.find_source(str(tmp_path)).name == "saved_model"
    assert sources.find_source("ResNet50V2").name == "keras_app"
    assert sources.find_source(lambda x: x).name == "callable"


def test_unknown_string_names_the_closest_model():
    with pytest.raises(ValueError, match="did you mean 'resnet50v2'"):
        sources.find_source("resnet50_v2x")
    with pytest.raises(ValueError, match="unknown model 3"):
        sources.find_source(3)


def test_weights_are_parsed_in_one_place():
    assert sources.parse_weights("NONE") is None and sources.parse_weights("none") is None
    assert sources.parse_weights(None) is None
    assert sources.parse_weights("imagenet") == "imagenet"
    with pytest.raises(ValueError, match="weights"):
        sources.parse_weights(3)


def test_demo_source_brings_its_class_names():
    adapter = tfxattr.as_model("demo")
    from tfxattr.demo import DEMO_CLASS_NAMES

    assert adapter.class_names == list(DEMO_CLASS_NAMES) and not adapter.random_weights


def test_keras_app_with_random_weights_says_so():
    adapter = tfxattr.as_model("mobilenetv2", weights="none")
    assert adapter.random_weights and adapter.weights == "none"
    assert adapter.preprocess is not None and len(adapter.class_names) == 1000


def test_a_new_source_is_one_registration(tiny_model, tiny_images):
    """A toy source: "tiny:<seed>" names a tiny CNN built with that seed."""
    from tests.helpers import build_tiny_cnn

    source = sources.ModelSource(
        "tiny", "'tiny:<seed>': a tiny CNN", lambda m: isinstance(m, str) and m.startswith("tiny:"),
        lambda m, weights: sources.Loaded(build_tiny_cnn(seed=int(m.split(":")[1])), m, "tiny"))
    sources.register_source(source, before="demo")
    try:
        assert list(sources.SOURCES).index("tiny") == 1
        exp = tfxattr.explain("tiny:0", tiny_images, "gradient", targets=1)
        direct = tfxattr.explain(tiny_model, tiny_images, "gradient", targets=1)
        np.testing.assert_allclose(exp.attribution, direct.attribution, rtol=1e-5, atol=1e-7)
        with pytest.raises(ValueError, match="already registered"):
            sources.register_source(source)
    finally:
        sources.unregister_source("tiny")
    assert "tiny" not in sources.SOURCES
