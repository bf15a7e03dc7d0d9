"""Data sources of the evaluation runner with real folders: class names, bit depths, unreadable files."""
import os

import numpy as np
import pytest
from PIL import Image

from tfxattr import evaluation as ev
from tfxattr.demo import DEMO_CLASS_NAMES, make_demo_data
from tfxattr.evaluation.folders import label_map


def run(out, data, **kw):
    kw = {"images_per_batch": 2, "progress": False, "log": lambda m: None, **kw}
    return ev.evaluate(data, ["demo"], ["gradient"], ["insertion"], out, **kw)


def class_folder(root, names, n=6, seed=4):
    """Demo images of the classes ``names`` (each folder holds the images of its class)."""
    data = make_demo_data(n, seed=seed)
    for name in names:
        os.makedirs(root / name, exist_ok=True)
    written = []
    for i, (img, label) in enumerate(zip(data["images"], data["labels"])):
        name = DEMO_CLASS_NAMES[label]
        if name in names:
            Image.fromarray(img).save(root / name / f"{i}.png")
            written.append((f"{name}/{i}.png", int(label)))
    return written


def test_class_folders_named_after_the_model_classes_get_the_model_indices(tmp_path):
    written = class_folder(tmp_path / "data", ["ring", "triangle"], n=12)
    assert {label for _, label in written} == {2, 4}  # sorted folder positions would have said 0 and 1
    summary = run(tmp_path / "out", str(tmp_path / "data"), report=False)
    results = {r["image"]: r for r in ev.read_records(summary.store) if r["kind"] == "result"}
    assert {image: r["label"] for image, r in results.items()} == dict(written)
    assert sum(r["predicted"] == r["label"] for r in results.values()) >= len(written) - 1  # the model agrees


def test_class_folders_the_model_does_not_know_are_refused_listing_both(tmp_path):
    class_folder(tmp_path / "data", ["ring"])
    os.makedirs(tmp_path / "data" / "blob")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "data" / "blob" / "b.png")
    with pytest.raises(ValueError, match=r"class folder\(s\) \['blob'\].*folders: blob, ring.*"
                                         r"model classes: disc, square, triangle, cross, ring"):
        run(tmp_path / "out", str(tmp_path / "data"))
    source = ev.load_data(str(tmp_path / "data"))
    assert label_map(source, None, "no names") is None  # a model without class names: sorted positions


def test_folder_images_of_16_bit_and_float_are_scaled(tmp_path):
    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    os.makedirs(tmp_path / "data" / "0")
    Image.fromarray(ramp).save(tmp_path / "data" / "0" / "deep.png")
    Image.fromarray(ramp.astype(np.float32) / 65535).save(tmp_path / "data" / "0" / "float.tif")
    chunk = next(ev.load_data(str(tmp_path / "data")).chunks(10))
    assert chunk.ids == ["0/deep.png", "0/float.tif"] and not chunk.skipped
    expected = np.round(ramp / 65535 * 255)
    for image in chunk.images:
        assert image.dtype == np.uint8 and image.shape == (64, 64, 3)
        np.testing.assert_allclose(image[..., 0], expected, atol=1)
        assert (image == 255).mean() < 0.01  # not all white


def test_an_unreadable_file_is_skipped_with_its_reason_and_the_run_goes_on(tmp_path):
    written = class_folder(tmp_path / "data", ["ring", "triangle"], n=12)
    good = tmp_path / "data" / written[0][0]
    (tmp_path / "data" / "ring" / "zz_cut.png").write_bytes(good.read_bytes()[:100])
    (tmp_path / "data" / "triangle" / "zz_text.png").write_text("not an image")
    summary = run(tmp_path / "out", str(tmp_path / "data"), report=True)
    assert summary.computed == len(written)
    assert set(summary.skipped_files) == {"ring/zz_cut.png", "triangle/zz_text.png"}
    assert "cannot read the image" in summary.skipped_files["ring/zz_cut.png"]
    records = ev.read_records(summary.store)
    skipped = [r for r in records if r["kind"] == "skipped"]
    assert {r["image"] for r in skipped} == set(summary.skipped_files)
    report = open(summary.report).read()
    assert "## Skipped files (2)" in report and "`triangle/zz_text.png`" in report and "not an image file" in report
    again = run(tmp_path / "out", str(tmp_path / "data"), report=False)  # resumed: nothing recorded twice
    assert again.computed == 0
    assert len([r for r in ev.read_records(summary.store) if r["kind"] == "skipped"]) == 2


def test_an_output_directory_that_cannot_be_written_is_refused_before_computing(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="out: cannot create the output directory"):
        run(tmp_path / "file" / "out", "shapes:2")

    def no_write(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    def no_data(*args, **kwargs):
        raise AssertionError("data was loaded before the output directory was checked")

    monkeypatch.setattr("tfxattr.evaluation.runner.tempfile.TemporaryFile", no_write)
    monkeypatch.setattr("tfxattr.evaluation.runner.load_data", no_data)
    with pytest.raises(ValueError, match=r"out: cannot write to the output directory .*Permission denied"):
        run(tmp_path / "readonly", "shapes:2")


def test_an_aggregation_naming_no_score_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"aggregation: \['foo'\] name\(s\) no score.*valid: .*insertion"):
        run(tmp_path / "a", "shapes:2", aggregation={"foo": "mean"})
    with pytest.raises(ValueError, match=r"aggregation: \['sic_aic/aic'\] name\(s\) a metric that is not run"):
        run(tmp_path / "b", "shapes:2", aggregation={"sic_aic/aic": "mean"})
    summary = run(tmp_path / "c", "shapes:2", aggregation={"insertion/insertion": "median"})
    assert summary.computed == 2
