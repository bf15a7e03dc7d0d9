"""The evaluation runner: resuming after a kill, data sources, filtering, reports and errors."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tfxattr import evaluation as ev
from tfxattr.evaluation.plots import line_plot, nice_ticks
from tfxattr.evaluation.summary import load_store, summarize

METHODS = ["gradient", "ig:steps=4"]
METRICS = ["insertion", "localization"]


def run(out, data="shapes:6", methods=METHODS, metrics=METRICS, **kw):
    kw = {"images_per_batch": 2, "progress": False, "report": False, "log": lambda m: None, **kw}
    return ev.evaluate(data, ["demo"], methods, metrics, out, **kw)


def results_by_key(path):
    rows = [r for r in ev.read_records(path) if r["kind"] == "result"]
    keys = [ev.result_key(r) for r in rows]
    assert len(keys) == len(set(keys)), "a result was stored twice"
    return {ev.result_key(r): r for r in rows}


def assert_same_results(a, b):
    assert a.keys() == b.keys()
    for key in a:
        for metric, scores in a[key]["scores"].items():
            for name, value in scores.items():
                other = b[key]["scores"][metric][name]
                assert (value is None) == (other is None)
                if value is not None:
                    assert value == pytest.approx(other, rel=1e-4, abs=1e-6), (key, metric, name)
        assert a[key]["curves"].keys() == b[key]["curves"].keys()


# -- resuming ----------------------------------------------------------------------------------------
def test_a_run_killed_part_way_resumes_to_the_same_store(tmp_path, monkeypatch):
    full = run(tmp_path / "full")
    expected = results_by_key(full.store)
    assert len(expected) == 12 and full.computed == 12

    real_append = ev.ResultStore.append
    written = []

    class Killed(RuntimeError):
        pass

    def dying_append(self, record):
        if record["kind"] == "result":
            if len(written) == 5:  # mid-way through the third batch of two images
                raise Killed()
            written.append(record)
        real_append(self, record)

    monkeypatch.setattr(ev.ResultStore, "append", dying_append)
    with pytest.raises(Killed):
        run(tmp_path / "part")
    monkeypatch.setattr(ev.ResultStore, "append", real_append)
    store = tmp_path / "part" / ev.STORE_NAME
    assert len(results_by_key(store)) == 5
    with open(store, "ab") as f:  # a kill during a write leaves a torn last line
        f.write(b'{"kind":"result","model":"demo","meth')
    resumed = run(tmp_path / "part")
    assert resumed.already_done == 5 and resumed.computed == 7
    assert_same_results(results_by_key(store), expected)
    assert open(store, "rb").read().endswith(b"\n")
    again = run(tmp_path / "part")  # a finished run has nothing left to do
    assert again.computed == 0 and again.already_done == 12


def test_a_killed_cli_process_resumes_without_duplicates(tmp_path, capsys):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "tfxattr.cli", "eval", "--data", "shapes:8", "--models", "demo", "--methods",
           "gradient", "ig:steps=4", "--metrics", "insertion", "--images-per-batch", "1", "--out", str(out),
           "--no-progress"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    store = out / ev.STORE_NAME
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if store.exists() and store.read_bytes().count(b'"kind":"result"') >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(results_by_key(store))
    assert 3 <= done_before <= 16
    from tfxattr.cli import main

    assert main(cmd[3:]) == 0  # the same command resumed in this process (a child would import TensorFlow again)
    assert f"{16 - done_before} new results ({done_before} already in the store)" in capsys.readouterr().out
    assert len(results_by_key(store)) == 16


def test_resuming_with_other_metrics_is_refused(tmp_path):
    run(tmp_path, data="shapes:2", methods=["gradient"])
    with pytest.raises(ValueError, match="another configuration"):
        run(tmp_path, data="shapes:2", methods=["gradient"], metrics=["insertion"])


def test_store_drops_a_torn_line_and_allows_one_writer(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"kind":"run","config":{}}\n{"kind":"res')
    assert len(ev.read_records(path)) == 1 and path.stat().st_size > 28  # reading does not modify
    with ev.ResultStore(path) as store:
        assert path.read_bytes() == b'{"kind":"run","config":{}}\n'
        with pytest.raises(ValueError, match="in use by another run"):
            ev.ResultStore(path)
        store.append({"kind": "result", "model": "m", "method": "x", "image": "0", "target": 1, "scores": {}})
        assert ("m", "x", "0", 1) in store.done
    path.write_bytes(b'{"kind":"run"}\nnot json\n{"kind":"run"}\n')
    with pytest.raises(ValueError, match="line 2"):
        ev.read_records(path)


# -- data sources, filtering ------------------------------------------------------------------------
def test_imagenet_mock_data_with_an_untrained_application(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=2):
        summary = ev.evaluate("imagenet2012", ["mobilenet_v2"], ["gradient", "ig:steps=2"], ["insertion"], tmp_path,
                              weights="none", progress=False, log=lambda m: None)
    assert summary.computed == 4 and summary.random_weights == ["mobilenet_v2:weights=none"]
    view = load_store(summary.store)
    assert view.models["mobilenet_v2:weights=none"]["input_shape"] == [224, 224, 3]
    assert {r["image"].split(":")[0] for r in view.results} == {"0000000", "0000001"}
    assert "RANDOM weights" in open(summary.report).read()


def test_npz_source_and_correct_only(tmp_path, demo_model):
    from tfxattr.demo import make_demo_data

    data = make_demo_data(8, seed=5)
    labels = data["labels"].copy()
    labels[:2] = (labels[:2] + 1) % 5  # two wrong labels: the model cannot agree with them
    np.savez(tmp_path / "d.npz", images=data["images"], labels=labels, masks=data["masks"])
    predicted = demo_model.predict(data["images"].astype(np.float32), verbose=0).argmax(-1)
    correct = predicted == labels
    summary = run(tmp_path / "out", data=str(tmp_path / "d.npz"), methods=["gradient"], correct_only=True)
    view = load_store(summary.store)
    assert {r["image"] for r in view.results} == {f"{i:06d}" for i in np.flatnonzero(correct)}
    assert all(r["target"] == r["label"] == r["predicted"] for r in view.results)
    model = view.models["demo"]
    assert model["images"] == 8 and len(model["excluded"]) == int((~correct).sum()) >= 2


def test_image_folders_class_subfolders_and_labels_csv(tmp_path):
    from tfxattr.demo import make_demo_data

    data = make_demo_data(4, seed=2)
    for i, (img, label) in enumerate(zip(data["images"], data["labels"])):
        os.makedirs(tmp_path / "sub" / str(label), exist_ok=True)
        Image.fromarray(img).resize((80, 80)).save(tmp_path / "sub" / str(label) / f"{i}.png")  # resized back
        os.makedirs(tmp_path / "csv", exist_ok=True)
        Image.fromarray(img).save(tmp_path / "csv" / f"{i}.png")
        Image.fromarray(data["masks"][i].astype(np.uint8) * 255).save(tmp_path / "csv" / f"{i}_mask.png")
    with open(tmp_path / "csv" / "labels.csv", "w") as f:
        f.write("file,label,mask\n" + "".join(f"{i}.png,{lb},{i}_mask.png\n" for i, lb in enumerate(data["labels"])))
    sub = ev.load_data(str(tmp_path / "sub"))
    assert sub.size == 4 and not sub.has_masks
    chunk = next(sub.chunks(10))
    assert sorted(chunk.labels.tolist()) == sorted(data["labels"].tolist())
    assert chunk.images[0].shape == (80, 80, 3)
    summary = run(tmp_path / "o1", data=str(tmp_path / "sub"), metrics=["insertion"], methods=["gradient"])
    assert summary.computed == 4
    csv_source = ev.load_data(str(tmp_path / "csv"))
    chunk = next(csv_source.chunks(10))
    assert np.array_equal(np.stack(chunk.masks), data["masks"]) and chunk.ids[0] == "0.png"
    summary = run(tmp_path / "o2", data=str(tmp_path / "csv"), methods=["gradient"])
    assert summary.computed == 4


def test_fit_to_input_crops_and_stretches():
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, 30:50] = 255  # a bar in the middle survives a centre crop
    mask = img[..., 0] > 0
    x, m = ev.fit_to_input([img], (20, 20), "crop", [mask])
    assert x.shape == (1, 20, 20, 3) and m.shape == (1, 20, 20) and m.dtype == bool
    assert m[0, :, 10].all() and not m[0, :, 0].any()
    x, _ = ev.fit_to_input([img], (20, 20), "stretch")
    assert x[0, :, 0].max() == 0 and x[0, :, 10].min() == 255
    with pytest.raises(ValueError, match="resize"):
        ev.fit_to_input([img], (20, 20), "pad")


# -- report ------------------------------------------------------------------------------------------
def test_report_files_and_table_rows(tmp_path):
    summary = run(tmp_path, data="shapes:4", methods=["gradient", "ig:steps=4", "ig+idgi:steps=4"],
                  metrics=["insertion", "localization"], report=True)
    text = open(summary.report).read()
    summary_section = text.split("## Summary")[1].split("\n## ")[0]
    rows = [line for line in summary_section.splitlines() if line.startswith("| demo |")]
    assert [r.split(" | ")[1] for r in rows] == ["gradient", "ig:steps=4", "ig+idgi:steps=4"]
    assert "insertion ↑ (mean)" in summary_section and "mae ↓ (mean)" in summary_section
    for rel in ("plots/demo__insertion__insertion.png", "plots/demo__insertion__insertion_ratio.png"):
        assert f"]({rel})" in text
        assert Image.open(tmp_path / rel).size == (800, 440)
    loc = text.split("## localization")[1]
    assert loc.count("| demo |") == 9 and "| 4 | 0 |" in loc  # 3 methods x 3 scores; 4 images, none skipped
    rows = summarize(load_store(summary.store))
    ins = next(r for r in rows if (r.method, r.score) == ("gradient", "insertion"))
    values = [x["scores"]["insertion"]["insertion"] for x in load_store(summary.store).results
              if x["method"] == "gradient"]
    assert ins.n == 4 and ins.mean == pytest.approx(np.mean(values)) and ins.aggregate == pytest.approx(ins.mean)
    data = json.load(open(tmp_path / "summary.json"))
    assert len(data) == len(rows)


def test_line_plot_and_ticks(tmp_path):
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0.13, 0.87)[0] <= 0.13 and nice_ticks(0.13, 0.87)[-1] >= 0.87
    x = np.linspace(0, 1, 11)
    path = line_plot([("a", x, x), ("b", x, np.where(x > 0.5, np.nan, 1 - x))], tmp_path / "p.png", title="t")
    img = np.asarray(Image.open(path))
    assert img.shape == (440, 800, 3)
    for color in [(31, 119, 180), (255, 127, 14)]:
        assert (img == color).all(-1).sum() > 100
    with pytest.raises(ValueError, match="same length"):
        line_plot([("a", x, x[:3])], tmp_path / "q.png")


# -- specs and errors --------------------------------------------------------------------------------
def test_specs_parse_and_print_canonically():
    spec = ev.parse_spec("ig+idgi: steps=200, baseline=black, layers=(input,last_block)")
    assert spec.name == "ig+idgi" and spec.options == {"steps": 200, "baseline": "black",
                                                        "layers": ("input", "last_block")}
    assert ev.parse_spec(spec.label) == spec and spec.label.startswith("ig+idgi:baseline=black,layers=")
    assert ev.parse_spec("x:flag=true,v=none").options == {"flag": True, "v": None}
    with pytest.raises(ValueError, match="key=value"):
        ev.parse_spec("ig:steps")


@pytest.mark.parametrize("kwargs, message", [
    ({"metrics": ["nope"]}, "unknown metric 'nope'"),
    ({"metrics": ["insertion:foo=1"]}, r"unknown option\(s\) \['foo'\] for metric 'insertion'"),
    ({"methods": ["nope"]}, "unknown method 'nope'"),
    ({"methods": ["ig:stepz=3"]}, r"unknown option\(s\) \['stepz'\]"),
    ({"models": ["resnet"]}, "unknown model 'resnet'"),
    ({"data": "/no/such/folder"}, "no such .npz file or image folder"),
    ({"data": "shapes:x"}, "expected 'shapes:N'"),
    ({"metrics": ["grid_localization"]}, "rao_grids"),
    ({"targets": "mine"}, "targets must be one of"),
    ({"target": "label"}, "option 'target' was renamed 'targets'"),
    ({"methods": []}, "methods is empty"),
])
def test_bad_input_gives_clear_errors(tmp_path, kwargs, message):
    args = {"data": "shapes:2", "models": ["demo"], "methods": ["gradient"], "metrics": ["insertion"], **kwargs}
    with pytest.raises(ValueError, match=message):
        ev.evaluate(args.pop("data"), args.pop("models"), args.pop("methods"), args.pop("metrics"), tmp_path,
                    progress=False, log=lambda m: None, **args)


def test_localization_without_masks_and_missing_imagenet_archives(tmp_path):
    from tfxattr.demo import make_demo_data

    data = make_demo_data(2, seed=3)
    np.savez(tmp_path / "nomask.npz", images=data["images"], labels=data["labels"])
    with pytest.raises(ValueError, match="needs object masks"):
        run(tmp_path / "o", data=str(tmp_path / "nomask.npz"))
    with pytest.raises(ValueError, match="ILSVRC2012_img_val.tar.*" + str(tmp_path / "manual")):
        ev.load_data("imagenet2012", data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "manual"))


def test_cli_eval_errors_are_one_line(tmp_path, capsys):
    from tfxattr.cli import main

    code = main(["eval", "--data", "shapes:2", "--methods", "gradient", "--metrics", "nope", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("tfxattr: unknown metric 'nope'") and "Traceback" not in err
    assert main(["eval", "--data", "shapes:2", "--methods", "x", "--metrics", "insertion", "--out",
                 str(tmp_path / "none"), "--report-only"]) == 2
