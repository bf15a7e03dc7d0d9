"""Two ranges, two names: ``pixel_range`` (how the user's images are scaled) and ``input_range`` (what the
model reads). A model whose range nobody declares gets the images unchanged; ``class_names`` for any model."""
import json
import warnings

import keras
import numpy as np
import pytest
from PIL import Image

import tfxattr

NAMES = ["dog", "cat", "bird"]


@pytest.fixture(scope="module")
def symmetric_model():
    """A small CNN that reads [-1, 1] itself: no Rescaling layer (the user's tf.data pipeline scales)."""
    keras.utils.set_random_seed(3)
    inp = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(6, 3, padding="same", activation="tanh")(inp)
    h = keras.layers.Conv2D(6, 3, padding="same", activation="tanh")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inp, keras.layers.Dense(len(NAMES))(h), name="symmetric_cnn")


@pytest.fixture(scope="module")
def symmetric_images():
    return np.random.default_rng(5).uniform(-1, 1, (3, 16, 16, 3)).astype(np.float32)


def _logits(model, x, targets):
    return model(x, training=False).numpy()[np.arange(len(x)), targets]


def _no_range_warning(record):
    said = [str(w.message) for w in record if "pixel_range" in str(w.message) or "input_range" in str(w.message)]
    assert not said, said


def test_a_model_of_unknown_range_gets_the_images_unchanged_with_or_without_pixel_range(symmetric_model,
                                                                                       symmetric_images):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        plain = tfxattr.explain(symmetric_model, symmetric_images, "gradient", progress=False)
        declared = tfxattr.explain(symmetric_model, symmetric_images, "gradient", pixel_range=(-1, 1), progress=False)
    _no_range_warning(record)
    for exp in (plain, declared):
        np.testing.assert_allclose(exp.scores, _logits(symmetric_model, symmetric_images, exp.targets), atol=1e-5)
        assert exp.pixel_range == (-1.0, 1.0)  # declared, or seen in the images: baselines and figures
    np.testing.assert_array_equal(plain.targets, declared.targets)
    np.testing.assert_allclose(plain.attribution, declared.attribution, rtol=1e-6, atol=1e-7)
    adapter = tfxattr.as_model(symmetric_model, pixel_range=(-1, 1))
    assert adapter.input_range is None and "unchanged" in adapter.describe()


def test_declared_input_range_maps_the_pixel_range_onto_it(symmetric_model, symmetric_images):
    pixels = (symmetric_images + 1.0) * 127.5
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        exp = tfxattr.explain(symmetric_model, pixels, "gradient", input_range=(-1, 1), pixel_range=(0, 255),
                              progress=False)
    _no_range_warning(record)
    np.testing.assert_allclose(exp.scores, _logits(symmetric_model, pixels / 127.5 - 1.0, exp.targets), atol=1e-5)
    direct = tfxattr.explain(symmetric_model, symmetric_images, "gradient", targets=exp.targets, progress=False)
    np.testing.assert_allclose(exp.attribution, direct.attribution / 127.5, rtol=1e-4, atol=1e-8)  # chain rule
    assert "mapped linearly" in tfxattr.as_model(symmetric_model, input_range=(-1, 1),
                                                 pixel_range=(0, 255)).describe()


def test_images_outside_the_declared_scale_warn_naming_pixel_range(symmetric_model, symmetric_images):
    pixels = (symmetric_images + 1.0) * 127.5
    with pytest.warns(UserWarning, match=r"pixel_range=\(0, 255\)"):  # the model reads [-1, 1]: say the images' scale
        tfxattr.explain(symmetric_model, pixels, "gradient", input_range=(-1, 1), progress=False)
    with pytest.warns(UserWarning, match=r"pixel_range=\(-1, 1\).*unchanged either way"):
        tfxattr.as_model(symmetric_model, pixel_range=(0, 255)).check_pixels(symmetric_images)


def test_a_leading_normalization_declares_the_range_its_data_came_from():
    inp = keras.Input((8, 8, 3))
    norm = keras.layers.Normalization()
    norm.adapt(np.random.default_rng(0).uniform(0, 255, (16, 8, 8, 3)).astype(np.float32))
    h = keras.layers.GlobalAveragePooling2D()(norm(inp))
    model = keras.Model(inp, keras.layers.Dense(3)(h))
    assert tfxattr.as_model(model).input_range == (0.0, 255.0)


def test_class_names_for_any_model(symmetric_model, symmetric_images):
    exp = tfxattr.explain(symmetric_model, symmetric_images, "gradient", targets="cat", class_names=NAMES,
                          progress=False)
    np.testing.assert_array_equal(exp.targets, [1, 1, 1])
    assert exp.class_names == NAMES and exp.label(0) == "cat"
    with pytest.raises(ValueError, match="did you mean 'cat'"):
        tfxattr.explain(symmetric_model, symmetric_images, "gradient", targets="catt", class_names=NAMES)
    with pytest.raises(ValueError, match="2 names but model"):
        tfxattr.as_model(symmetric_model, class_names=["a", "b"])
    assert tfxattr.as_model(symmetric_model, class_names="dog, cat,bird").class_names == NAMES


def test_the_demo_model_object_carries_its_class_names(tmp_path):
    from tfxattr.demo import DEMO_CLASS_NAMES, load_demo_model, make_demo_data

    model = load_demo_model()
    assert list(model.class_names) == list(DEMO_CLASS_NAMES)
    images = make_demo_data(2, seed=3)["images"]
    exp = tfxattr.explain(model, images, "gradient", targets="ring", progress=False)
    np.testing.assert_array_equal(exp.targets, [4, 4])
    assert exp.class_names == list(DEMO_CLASS_NAMES)
    path = tmp_path / "copy.keras"
    model.save(path)
    again = keras.models.load_model(path, compile=False)  # the names come back from the saved name
    assert tfxattr.as_model(again).class_names == list(DEMO_CLASS_NAMES)
    assert tfxattr.as_model(str(path)).class_names == list(DEMO_CLASS_NAMES)


def test_the_cli_takes_input_range_and_class_names(symmetric_model, tmp_path, capsys):
    from tfxattr.cli import main

    path = tmp_path / "sym.keras"
    symmetric_model.save(path)
    image = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(image)
    names = tmp_path / "names.txt"
    names.write_text("dog\ncat\n\nbird\n")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert main(["explain", str(image), "--model", str(path), "--input-range", "-1", "1", "--class-names",
                     str(names), "--targets", "bird", "--method", "gradient", "--no-progress",
                     "--out", str(tmp_path / "o.png")]) == 0
    _no_range_warning(record)  # files are read as 0..255: mapped onto the declared [-1, 1]
    assert "class 2 (bird)" in capsys.readouterr().out
    assert main(["explain", str(image), "--model", str(path), "--class-names", "dog,cat", "--no-progress",
                 "--out", str(tmp_path / "p.png")]) == 2
    assert "2 names but model" in capsys.readouterr().err
    assert "--input-range" in _help(main, ["explain", "--help"]) and "--class-names" in _help(main, ["eval", "--help"])


def _help(main, argv):
    import contextlib
    import io

    text = io.StringIO()
    with contextlib.redirect_stdout(text), pytest.raises(SystemExit):
        main(argv)
    return text.getvalue()


def test_eval_takes_input_range_and_class_names(symmetric_model, tmp_path):
    from tfxattr.cli import main
    from tfxattr.evaluation import EvaluationConfig, load_model

    path = tmp_path / "sym.keras"
    five = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5)])
    five.save(path)
    shapes = "disc,square,triangle,cross,ring"
    out = tmp_path / "run"
    assert main(["eval", "--data", "shapes:2", "--models", str(path), "--input-range", "-1", "1",
                 "--pixel-range", "0", "255", "--class-names", shapes, "--methods", "gradient",
                 "--metrics", "insertion:step=0.25", "--out", str(out), "--no-progress"]) == 0
    with open(out / "results.jsonl") as f:
        config = json.loads(f.readline())["config"]
    assert config["input_range"] == [-1.0, 1.0] and config["class_names"] == shapes.split(",")
    assert EvaluationConfig(input_range=(-1, 1), class_names=shapes).class_names == tuple(shapes.split(","))
    loaded = load_model(f"{path}:input_range=(-1,1),class_names=({shapes})", pixel_range=(0, 255))
    assert loaded.adapter.input_range == (-1.0, 1.0) and loaded.adapter.class_names == shapes.split(",")


def test_a_keras_model_can_carry_its_class_names_as_an_attribute():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    model.class_names = NAMES
    images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    exp = tfxattr.explain(model, images, "gradient", targets="bird", progress=False)
    np.testing.assert_array_equal(exp.targets, [2, 2])
    assert exp.class_names == NAMES


def test_an_explanation_brings_its_input_range_to_the_metrics(symmetric_model, symmetric_images):
    """compute() given an Explanation scores it on the model fed as explain() fed it: 0..255 images mapped
    onto the [-1, 1] the model was declared to read (without the Explanation's input_range the model would
    get 0..255 values)."""
    from tfxattr.metrics import compute

    pixels = (symmetric_images + 1.0) * 127.5
    exp = tfxattr.explain(symmetric_model, pixels, "gradient", input_range=(-1, 1), pixel_range=(0, 255),
                          progress=False)
    by_explanation = compute("insertion", symmetric_model, pixels, exp).scores["insertion"]
    by_options = compute("insertion", symmetric_model, pixels, exp.map, targets=exp.targets, pixel_range=(0, 255),
                         input_range=(-1, 1)).scores["insertion"]
    np.testing.assert_allclose(by_explanation, by_options, atol=1e-6)
    unmapped = compute("insertion", symmetric_model, pixels, exp.map, targets=exp.targets,
                       pixel_range=(0, 255)).scores["insertion"]
    assert np.abs(unmapped - by_explanation).max() > 1e-3  # the input range matters to the score
