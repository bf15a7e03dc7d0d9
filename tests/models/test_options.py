"""ModelOptions declares the model keywords once: every door takes exactly its fields, with their defaults,
checks every value naming the keyword, and passes the options on to the model it builds."""
import dataclasses
import inspect

import numpy as np
import pytest

import tfxattr
from tfxattr.metrics import compute
from tfxattr.models.options import NAMES, TEXT_OPTIONS, ModelOptions
from tfxattr.serving import explainer_model

#: every Python door that takes a model
DOORS = {"explain": tfxattr.explain, "as_model": tfxattr.as_model, "compute": compute, "export": tfxattr.export,
         "explainer_model": explainer_model}


def keyword_defaults(fn) -> dict:
    params = inspect.signature(fn).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


@pytest.mark.parametrize("door", sorted(DOORS))
def test_every_door_takes_exactly_the_model_options_with_their_defaults(door):
    fn = DOORS[door]
    keywords = keyword_defaults(fn)
    assert [k for k in keywords if k in NAMES] == list(NAMES)
    fields = {f.name: f.default for f in dataclasses.fields(ModelOptions)}
    assert {k: keywords[k] for k in NAMES} == {**fields, **fn.model_defaults}
    assert all(f"``{name}=" in fn.__doc__ for name in NAMES)  # help() shows each option's doc


def test_only_the_metrics_score_probabilities_by_default():
    assert compute.model_defaults == {"output": "probability"}
    assert all(DOORS[d].model_defaults == {} for d in DOORS if d != "compute")


def test_no_method_takes_an_option_named_like_a_model_option():
    """explain() and export() read the model options out of ``**options`` first: a method option of the same
    name would never reach the method."""
    clash = {name: sorted(set(spec.defaults) & set(NAMES)) for name, spec in tfxattr.METHODS.items()}
    assert {name: c for name, c in clash.items() if c} == {}


@pytest.mark.parametrize("command", ["explain", "export"])
def test_the_command_line_has_a_flag_for_every_option_written_as_text(command):
    from tfxattr.cli.parser import build_parser as _parser

    sub = _parser([command]).commands[command]
    flags = {a.dest for a in sub._actions}
    assert set(TEXT_OPTIONS) <= flags and not {"preprocess", "strategy"} & flags
    assert set(TEXT_OPTIONS) == set(NAMES) - {"preprocess", "strategy"}  # a function and a Strategy are no text


def test_eval_flags_are_the_options_its_config_carries_and_a_model_spec_takes_every_text_option():
    from tfxattr.cli.model_flags import eval_model_flags as _eval_model_flags
    from tfxattr.cli.parser import build_parser as _parser
    from tfxattr.evaluation.loading import SPEC_OPTIONS

    sub = _parser(["eval"]).commands["eval"]
    flags = {a.dest for a in sub._actions}
    assert set(_eval_model_flags()) == {"weights", "batch_size", "pixel_range", "input_range", "class_names"}
    assert set(_eval_model_flags()) <= flags and not (set(TEXT_OPTIONS) - set(_eval_model_flags())) & flags
    assert SPEC_OPTIONS == TEXT_OPTIONS


def test_flags_become_the_keywords(tmp_path):
    from tfxattr.cli import parse_args
    from tfxattr.models.options import model_flags

    names = tmp_path / "names.txt"
    names.write_text("a\n\nb\n")
    args = parse_args(["explain", "--head", "softmax", "--input-shape", "8", "8", "3", "--output-index", "out",
                       "--pixel-range", "0", "1", "--class-names", str(names), "--num-classes", "2"])
    got = model_flags(args)
    assert got["head"] == "softmax" and got["input_shape"] == (8, 8, 3) and got["output_index"] == "out"
    assert got["pixel_range"] == (0.0, 1.0) and got["class_names"] == ["a", "b"] and got["num_classes"] == 2
    ModelOptions(**got)  # every parsed value passes the checks
    assert parse_args(["explain", "--output-index", "1"]).output_index == 1


@pytest.mark.parametrize("name, value, message", [
    ("output", "logits", "did you mean 'logit'"),
    ("batch_size", 0, "batch_size must be a positive integer"),
    ("preprocess", "x / 255", "preprocess must be a function"),
    ("weights", 3, "weights must be 'imagenet', 'none' or a file path"),
    ("output_index", -1, "output_index must be a non-negative int"),
    ("head", "softmx", "did you mean 'softmax'"),
    ("input_shape", (16, 16), r"input_shape must be \(H, W, C\)"),
    ("num_classes", 1.5, "num_classes must be a positive integer"),
    ("pixel_range", (1, 0), "pixel_range must be finite with low < high"),
    ("input_range", "0..1", r"input_range must be \(low, high\)"),
    ("class_names", ["a", ""], "class_names has an empty name"),
    ("precision", "bf16", "did you mean 'bfloat16'"),
    ("strategy", "mirrored", "strategy"),
])
def test_a_bad_value_is_refused_naming_the_keyword(name, value, message):
    with pytest.raises(ValueError, match=message):
        ModelOptions(**{name: value})
    with pytest.raises(ValueError, match=message):
        tfxattr.as_model("demo", **{name: value})


def test_values_are_kept_in_one_form():
    options = ModelOptions(pixel_range=[0, 1], input_shape=[8, None, np.int64(3)], class_names="a, b")
    assert options.pixel_range == (0.0, 1.0) and options.input_shape == (8, None, 3)
    assert options.class_names == ("a", "b")
    assert set(options.replace(head="softmax").changed()) == {"input_shape", "pixel_range", "class_names", "head"}
    assert options.replace(output="probability").changed(output="probability") == options.changed()
    assert hash(options) == hash(ModelOptions(pixel_range=(0.0, 1.0), input_shape=(8, None, 3), class_names=["a", "b"]))


def test_an_unknown_keyword_gets_the_closest_and_a_retired_one_its_new_name(tiny_model, tiny_images):
    with pytest.raises(ValueError, match=r"as_model\(\).*did you mean 'pixel_range'"):
        tfxattr.as_model(tiny_model, pixle_range=(0, 1))
    with pytest.raises(ValueError, match=r"^explain\(\): option 'target' was renamed 'targets'$"):
        tfxattr.explain(tiny_model, tiny_images, "gradient", target=1)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['pixle_range'\]"):  # left to the method
        tfxattr.explain(tiny_model, tiny_images, "gradient", pixle_range=(0, 1))


def test_export_refuses_a_strategy_before_anything_is_traced(tiny_model):
    import tensorflow as tf

    with pytest.raises(ValueError, match=r"explainer_model\(\): strategy cannot be exported"):
        explainer_model(tiny_model, "gradient", strategy=tf.distribute.OneDeviceStrategy("/cpu:0"))


def test_every_door_hands_its_options_to_the_model(tiny_model, tiny_images):
    names = ["a", "b", "c", "d", "e"]
    exp = tfxattr.explain(tiny_model, tiny_images, "gradient", targets="c", class_names=names, output="probability",
                          batch_size=2, progress=False)
    assert exp.class_names == names and exp.run["output"] == "probability" and exp.run["batch_size"] == 2
    np.testing.assert_array_equal(exp.targets, [2, 2, 2])
    served = explainer_model(tiny_model, "gradient", class_names=names, output="probability")
    assert '"class_names": ["a", "b", "c", "d", "e"]' in served.explainer.description.numpy().decode()
    # compute(): a model option builds the model's adapter, so the same numbers as the adapter given itself
    maps = np.abs(exp.attribution).sum(-1)
    adapter = tfxattr.as_model(tiny_model, output="probability", pixel_range=(0, 255), input_range=(-1, 1))
    by_adapter = compute("insertion", adapter, tiny_images, maps, targets=2).scores["insertion"]
    by_options = compute("insertion", tiny_model, tiny_images, maps, targets=2, pixel_range=(0, 255),
                         input_range=(-1, 1)).scores["insertion"]
    np.testing.assert_array_equal(by_adapter, by_options)
    with pytest.raises(ValueError, match="head cannot be changed on an existing ModelAdapter"):
        compute("insertion", adapter, tiny_images, maps, targets=2, head="softmax")


def test_a_model_spec_takes_the_text_options_and_names_them_in_its_label(tmp_path):
    from tfxattr.evaluation.loading import check_model, load_model
    from tfxattr.specs import parse_spec

    with pytest.raises(ValueError, match="did you mean 'softmax'"):
        check_model(parse_spec("demo:head=softmx"))
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['preprocess'\]"):
        check_model(parse_spec("demo:preprocess=x"))
    loaded = load_model("demo:output=probability,batch_size=4,class_names=(a,b,c,d,e)")
    assert loaded.adapter.output == "probability" and loaded.adapter.batch_size == 4
    assert loaded.adapter.class_names == ["a", "b", "c", "d", "e"]
    assert loaded.label == "demo:output=probability"  # batch size and names never change a number


def test_export_computes_in_the_precision_explain_does(tiny_model, tiny_images):
    targets = np.array([1, 2, 3], np.int32)
    served = explainer_model(tiny_model, "ig", steps=4, precision="bfloat16")(tiny_images, targets)["attributions"]
    exp = tfxattr.explain(tiny_model, tiny_images, "ig", steps=4, precision="bfloat16", targets=targets, progress=False)
    np.testing.assert_allclose(served.numpy(), exp.attribution, rtol=1e-5, atol=1e-7)
