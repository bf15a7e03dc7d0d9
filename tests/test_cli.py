"""The `tfxattr` command line, run as a user would (a subprocess through the installed entry point)."""
import os
import subprocess
import sys

import numpy as np
from PIL import Image


def run(*args, env=None):
    cmd = [sys.executable, "-m", "tfxattr.cli", *args]
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=full_env)


def test_explain_default_writes_a_png_of_the_demo(tmp_path):
    out = tmp_path / "demo.png"
    res = run("explain", "--method", "ig+idgi", "--steps", "16", "--out", str(out), "--no-progress")
    assert res.returncode == 0, res.stderr
    img = np.asarray(Image.open(out))
    assert img.ndim == 3 and img.shape[2] == 3 and img.shape[1] > 2 * img.shape[0]
    assert img.std() > 10  # not a blank picture
    assert "demo.png" in res.stdout


def test_explain_several_images_and_a_target(tmp_path):
    from tfxattr.demo import make_demo_data

    data = make_demo_data(2, seed=7)
    paths = []
    for i, im in enumerate(data["images"]):
        p = tmp_path / f"in{i}.png"
        Image.fromarray(im).save(p)
        paths.append(str(p))
    res = run("explain", *paths, "--method", "gradient", "--target", "1", "--out", str(tmp_path / "o.png"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "o_0.png").exists() and (tmp_path / "o_1.png").exists()
    assert res.stdout.count("class 1") == 2


def test_methods_lists_every_method():
    from tfxattr.methods import METHODS

    res = run("methods")
    assert res.returncode == 0
    for name in METHODS:
        assert name in res.stdout


def test_keras_application_without_weights_says_where_to_put_the_file(tmp_path):
    res = run("explain", "--model", "resnet50v2", "--out", str(tmp_path / "x.png"), env={"KERAS_HOME": str(tmp_path)})
    assert res.returncode == 2
    assert "resnet50v2_weights_tf_dim_ordering_tf_kernels.h5" in res.stderr and "--weights" in res.stderr
    assert "Traceback" not in res.stderr


def test_bad_method_is_a_one_line_error(tmp_path):
    res = run("explain", "--method", "nope", "--out", str(tmp_path / "x.png"))
    assert res.returncode == 2 and "unknown method" in res.stderr and "Traceback" not in res.stderr
