"""The `tfxattr` command line: run as a user would (a subprocess through the installed entry point) where the
process matters (TensorFlow's log lines, exit status); otherwise ``main(argv)`` in this process, the same code
after the entry point, without importing TensorFlow again in a child (~10 s each)."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


def run(*args, env=None, python_options=False):
    """``tfxattr *args`` in a subprocess; ``python_options``: the args up to the first "--..." go to Python."""
    split = next(i for i, a in enumerate(args) if a.startswith("--")) if python_options else 0
    cmd = [sys.executable, *args[:split], "-m", "tfxattr.cli", *args[split:]]
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=full_env)


def test_explain_default_writes_a_png_of_the_demo(tmp_path, capsys):
    from tfxattr.cli import main

    out = tmp_path / "demo.png"
    assert main(["explain", "--method", "ig+idgi", "--steps", "16", "--out", str(out), "--no-progress"]) == 0
    img = np.asarray(Image.open(out))
    assert img.ndim == 3 and img.shape[2] == 3 and img.shape[1] > 2 * img.shape[0]
    assert img.std() > 10  # not a blank picture
    assert "demo.png" in capsys.readouterr().out


def test_explain_several_images_and_a_target(tmp_path, capsys):
    from tfxattr.cli import main
    from tfxattr.demo import make_demo_data

    data = make_demo_data(2, seed=7)
    paths = []
    for i, im in enumerate(data["images"]):
        p = tmp_path / f"in{i}.png"
        Image.fromarray(im).save(p)
        paths.append(str(p))
    assert main(["explain", *paths, "--method", "gradient", "--targets", "1", "--out", str(tmp_path / "o.png")]) == 0
    assert (tmp_path / "o_0.png").exists() and (tmp_path / "o_1.png").exists()
    assert capsys.readouterr().out.count("class 1") == 2


def test_methods_lists_every_method(capsys):
    from tfxattr.cli import main
    from tfxattr.methods import METHODS

    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in METHODS:
        assert name in out
    for name, spec in METHODS.items():  # a method without a graph form says why, under its line
        if spec.cls.not_exportable:
            assert f"(not exportable: {spec.cls.not_exportable})" in out


def test_keras_application_without_weights_says_where_to_put_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    err = one_line_error(capsys, "explain", "--model", "resnet50v2", "--out", str(tmp_path / "x.png"))
    assert "resnet50v2_weights_tf_dim_ordering_tf_kernels.h5" in err and "--weights" in err


def test_bad_method_is_a_one_line_error(tmp_path, capsys):
    assert "unknown method" in one_line_error(capsys, "explain", "--method", "nope", "--out", str(tmp_path / "x.png"))


# -- issue 9: quiet, one-line errors, method specs, targets by name ----------------------------------
#: what a TensorFlow / absl log line looks like ("I0000 00:00:..." / "2026-01-01 10:00:00.0: I tensorflow/...")
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d|^\d{4}-\d\d-\d\d [\d:.]+: [IWEF] |tensorflow/|oneDNN|"
                         r"To enable the following|absl::InitializeLog|cpu_feature_guard")


def test_a_normal_run_logs_nothing_from_tensorflow_and_a_user_error_exits_2_without_traceback(tmp_path, capsys):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell has it
    cmd = [sys.executable, "-m", "tfxattr.cli", "explain"]
    ok = subprocess.run(cmd + ["--method", "ig:steps=8", "--targets", "triangle", "--smooth", "2", "--seed", "0",
                               "--no-progress", "--out", str(tmp_path / "o.png")],
                        capture_output=True, text=True, timeout=300, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "class 2 (triangle)" in ok.stdout and (tmp_path / "o.png").exists()
    assert not [line for line in ok.stderr.splitlines() if TF_LOG_LINE.search(line)], ok.stderr
    # the user error, in this process (a child would import TensorFlow again): exit code 2, one line, no traceback
    err = one_line_error(capsys, "explain", str(tmp_path / "missing.png"), "--out", str(tmp_path / "x.png"))
    assert err == f"tfxattr: images: no such file {str(tmp_path / 'missing.png')!r}"


def one_line_error(capsys, *argv):
    from tfxattr.cli import main

    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1 and err.startswith("tfxattr: "), err
    return err


def test_user_errors_of_explain_are_one_line(tmp_path, capsys):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(good)
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:60])
    out = str(tmp_path / "o.png")
    assert "cut.png" in one_line_error(capsys, "explain", str(tmp_path / "cut.png"), "--out", out)
    assert "did you mean 'triangle'" in one_line_error(capsys, "explain", "--targets", "triangel", "--out", out)
    assert "stepz" in one_line_error(capsys, "explain", "--method", "ig:stepz=3", "--out", out)
    assert "--steps 4 disagrees with steps=8" in one_line_error(capsys, "explain", "--method", "ig:steps=8",
                                                                "--steps", "4", "--out", out)
    assert "--out: directory" in one_line_error(capsys, "explain", "--out", str(tmp_path / "no" / "o.png"))
    assert "did you mean 'bfloat16'" in one_line_error(capsys, "explain", "--precision", "bf16", "--out", out)
    assert "--aggregation" in one_line_error(capsys, "eval", "--data", "shapes:2", "--methods", "gradient",
                                             "--metrics", "insertion", "--aggregation", "aic", "--out", out)


def test_explain_takes_method_specs_smooth_seed_and_targets_by_index_or_name(tmp_path, capsys):
    from tfxattr.cli import main

    assert main(["explain", "--method", "ig+idgi:steps=8,baseline=white", "--smooth", "2", "--seed", "1",
                 "--target", "3", "--no-progress", "--out", str(tmp_path / "a.png")]) == 0  # abbreviates --targets
    assert "class 3 (cross)" in capsys.readouterr().out
    paths = [str(tmp_path / "a.png"), str(tmp_path / "a.png")]
    assert main(["explain", *paths, "--method", "gradient", "--targets", "ring,disc", "--no-progress",
                 "--out", str(tmp_path / "b.png")]) == 0
    out = capsys.readouterr().out
    assert "class 4 (ring)" in out and "class 0 (disc)" in out
    assert main(["explain", "--method", "gradient", "--precision", "bfloat16", "--no-progress",
                 "--out", str(tmp_path / "c.png")]) == 0
    assert "class 4 (ring)" in capsys.readouterr().out


def test_the_stderr_filter_drops_tensorflow_lines_and_passes_everything_else():
    import tfxattr.quiet

    script = (  # tfxattr.quiet alone (standard library only), as it runs before TensorFlow is imported
        "import importlib.util, os, sys\n"
        f"spec = importlib.util.spec_from_file_location('quiet', {tfxattr.quiet.__file__!r})\n"
        "quiet = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(quiet)\n"
        "quiet.quiet_command_line(['explain'])\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
        "os.write(2, b'I0000 00:00:1796103312.670730   31566 port.cc:153] oneDNN custom operations are on.\\n')\n"
        "os.write(2, b'E0000 00:00:17961033')\n"  # a log line written in two parts
        "os.write(2, b'20.244920   31610 cuda_platform.cc:52] failed call to cuInit\\n')\n"
        "os.write(2, b'2026-01-01 10:00:00.123456: W tensorflow/core/x.cc:1] old style\\n')\n"
        "print('a user warning', file=sys.stderr, flush=True)\n"
        "os.write(2, b'\\rbar 50%')\n"
        "quiet.stop_filtering()\n"
        "print('after', file=sys.stderr)\n")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stderr == b"a user warning\n\rbar 50%after\n"  # bytes: "\r" kept as the bar wrote it


# -- issue 20, round 2: the weak spots of the command line ---------------------------------------------
def test_an_unknown_option_or_command_suggests_the_closest(capsys):
    from tfxattr.cli import main

    for argv, hint in ((["explain", "--metod", "ig"], "did you mean '--method'"),
                       (["explian"], "did you mean 'explain'"),
                       (["eval", "--data", "shapes:2", "--metods", "ig"], "did you mean '--methods'")):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        assert hint in capsys.readouterr().err


def test_out_jpg_writes_a_real_jpeg_and_other_suffixes_are_refused(tmp_path, capsys):
    from tfxattr.cli import main

    assert main(["explain", "--method", "gradient", "--no-progress", "--out", str(tmp_path / "x.jpg")]) == 0
    with Image.open(tmp_path / "x.jpg") as img:
        assert img.format == "JPEG"
    err = one_line_error(capsys, "explain", "--method", "gradient", "--out", str(tmp_path / "x.gif"))
    assert "--out" in err and ".png" in err and ".jpg" in err


def test_out_a_directory_writes_inside_it_named_after_the_image(tmp_path, capsys):
    from tfxattr.cli import main

    image = tmp_path / "cat.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(image)
    folder = tmp_path / "figures"
    folder.mkdir()
    assert main(["explain", str(image), "--method", "gradient", "--no-progress", "--out", str(folder)]) == 0
    assert (folder / "cat_gradient.png").is_file() and not (tmp_path / "figures.png").exists()
    assert str(folder / "cat_gradient.png") in capsys.readouterr().out


def test_export_onto_an_existing_file_is_a_one_line_error(tmp_path, capsys):
    existing = tmp_path / "model.txt"
    existing.write_text("keep me")
    err = one_line_error(capsys, "export", "demo", str(existing))
    assert str(existing) in err and "file" in err and existing.read_text() == "keep me"


def test_an_unknown_aggregation_score_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "run"
    err = one_line_error(capsys, "eval", "--data", "shapes:2", "--methods", "gradient", "--metrics", "insertion",
                         "--aggregation", "foo=mean", "--no-progress", "--out", str(out))
    assert "foo" in err and "insertion" in err  # the unknown key and the valid score names
    assert not (out / "results.jsonl").exists()


def test_help_does_not_import_tensorflow_and_shows_the_defaults():
    res = run("-X", "importtime", "--help", python_options=True)
    assert res.returncode == 0, res.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines() if line.startswith("import time")}
    assert "tfxattr" in imported and "tensorflow" not in imported and "keras" not in imported
    explain_help = " ".join(run("explain", "--help").stdout.split())
    assert "(default: ig)" in explain_help and "(default: explanation.png)" in explain_help
    eval_help = " ".join(run("eval", "--help").stdout.split())
    assert "--seed SEED random seed" in eval_help and "(default: 0)" in eval_help.rsplit("--seed SEED", 1)[1][:300]


def test_tfds_chatter_stays_off_stdout_when_the_data_is_not_there(monkeypatch, capsys):
    import tensorflow_datasets as tfds

    from tfxattr.evaluation.datasets import TfdsSource

    def offline(*args, **kwargs):
        print("Downloading and preparing dataset 11.06 MiB to /nowhere/mnist/3.0.1...")
        raise ConnectionError("no network")

    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(ValueError, match="could not load tfds data set 'mnist'.*no network"):
        TfdsSource("mnist")
    assert capsys.readouterr().out == ""


def test_beam_is_imported_without_its_apitools_line():
    code = "from tfxattr.evaluation.beam import pipeline_options; pipeline_options(1)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert res.returncode == 0, res.stderr
    assert "apitools" not in res.stderr


def test_methods_answers_from_a_catalog_cached_per_source_without_tensorflow(tmp_path):
    """The first `tfxattr methods` lists the live registry and caches the rows under a fingerprint of the
    package's source; the next one prints the same lines without importing TensorFlow."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFXATTR_CACHE": str(tmp_path / "cache")}
    cli = [sys.executable, "-m", "tfxattr.cli", "methods"]
    first = subprocess.run(cli, capture_output=True, text=True, timeout=300, env=env)
    again = subprocess.run([sys.executable, "-X", "importtime", *cli[1:]], capture_output=True, text=True,
                           timeout=300, env=env)
    assert first.returncode == again.returncode == 0 and first.stdout == again.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in again.stderr.splitlines() if line.startswith("import time")}
    assert "tfxattr.catalog" in imported and "tensorflow" not in imported and "keras" not in imported
    from tfxattr.catalog import live_rows

    assert [line.split()[0] for line in first.stdout.splitlines() if not line.startswith(" ")] == \
        [name for name, _, _ in live_rows()]


def test_the_catalog_key_follows_every_source_file(tmp_path):
    from tfxattr.catalog import source_key

    (tmp_path / "pkg").mkdir()
    module = tmp_path / "pkg" / "m.py"
    module.write_text("x = 1\n")
    before = source_key(str(tmp_path))
    module.write_text("x = 22\n")
    assert source_key(str(tmp_path)) != before


# -- issue 22: several methods in one figure; the package split; python -m tfxattr ----------------------
def test_explain_with_several_methods_writes_one_comparison_figure(tmp_path, capsys, monkeypatch):
    from tfxattr import figures
    from tfxattr.cli import main
    from tfxattr.demo import make_demo_data

    original, drawn = figures.plot, []

    def recording(*args, **kwargs):  # the figure the command draws, to count its axes
        drawn.append(original(*args, **kwargs))
        return drawn[-1]
    monkeypatch.setattr(figures, "plot", recording)
    paths = []
    for i, im in enumerate(make_demo_data(2, seed=7)["images"]):
        paths.append(str(tmp_path / f"in{i}.png"))
        Image.fromarray(im).save(paths[-1])
    out = tmp_path / "cmp.png"
    assert main(["explain", *paths, "--method", "ig", "ig+idgi", "gradcam", "--steps", "8", "--no-progress",
                 "--out", str(out)]) == 0
    assert out.is_file() and not (tmp_path / "cmp_0.png").exists()
    assert f"3 methods x 2 image(s) -> {out}" in capsys.readouterr().out
    (fig,) = drawn
    labels = [ax.get_label() for ax in fig.axes]
    assert labels.count("image") == 2 and labels.count("map") == 6 and labels.count("colorbar") == 3
    titles = [ax.get_title() for ax in fig.axes if ax.get_label() == "map"]
    assert [t.split("\n")[0] for t in titles] == ["ig", "ig", "ig+idgi", "ig+idgi", "gradcam", "gradcam"]
    assert [ax.get_title() for ax in fig.axes if ax.get_label() == "image"] == ["in0.png", "in1.png"]
    pixels = np.asarray(Image.open(out))
    assert pixels.shape[0] > pixels.shape[1] and pixels.std() > 10  # rows are methods: taller than wide
    err = one_line_error(capsys, "explain", "--method", "gradcam", "gradient", "--steps", "4", "--out", str(out))
    assert "--steps: none of the methods" in err
    assert main(["explain", "--method", "gradient", paths[1], "--no-progress", "--out", str(tmp_path / "one.png")]) == 0
    assert f"{paths[1]}: class" in capsys.readouterr().out  # an image after --method is still an image


def test_python_m_tfxattr_is_the_command_and_quiet():
    res = subprocess.run([sys.executable, "-m", "tfxattr", "models"], capture_output=True, text=True, timeout=300,
                         env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert res.returncode == 0 and "demo" in res.stdout  # `models` imports TensorFlow, which logs unless quiet
    assert not [line for line in res.stderr.splitlines() if TF_LOG_LINE.search(line)], res.stderr

