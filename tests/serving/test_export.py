"""Issue 10: explanations exported as SavedModel signatures that run with TensorFlow alone."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfxattr
from tfxattr.serving import NotExportable, explainer_model, signature_name

HERE = os.path.dirname(os.path.abspath(__file__))
# the bound: relative L2 distance between the served and the library attributions
TOLERANCE = 1e-4
STEPS = 4  # few steps keep the test fast; the engine's chunking is exercised by BATCH below
BATCH = 5  # not a divisor of the rows of any path: chunks cross image boundaries and carry IDGI segments
SEED = 3
SMOOTH = {"inner": "ig+idgi", "samples": 3, "noise": 0.1}
# signature key -> (method name, options) given to tfxattr.explain for the reference: one of each kind of graph
# (fixed paths with float64 points and IDGI's carried segments, blur, adaptive, layer methods, a wrapper, the
# learned explainer). tests/test_doors.py checks every registered method's signature against explain();
# tests/paths/test_paths.py every rule's IDGI carry, eager against traced.
METHODS = {
    "gradient": ("gradient", {}),
    "ig_saliency": ("ig", {"rule": "saliency", "steps": STEPS}),
    "ig+idgi_right": ("ig+idgi", {"rule": "right", "steps": STEPS}),
    "ig+idgi": ("ig+idgi", {"steps": STEPS, "rule": "saliency"}),
    "blur_ig+idgi_blurred_side": ("blur_ig+idgi", {"gradient_at": "blurred_side", "steps": STEPS}),
    "gradcam++": ("gradcam++", {}),
    "smooth": ("smooth", SMOOTH),
    "iia2": ("iia2", {"steps": 2}),
    "guided_ig+idgi": ("guided_ig+idgi", {"steps": STEPS}),
    "ggig": ("ggig", {"steps": 2, "ascent_steps": 2}),
    "learned": ("learned", {}),  # the shipped demo explainer
}


@pytest.fixture(scope="module")
def images(demo_data):
    return np.asarray(demo_data["images"][:3], np.float32)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("serving") / "explainer" / "1")
    specs = {key: (name, dict(options)) for key, (name, options) in METHODS.items()}
    tfxattr.export("demo", path, methods=specs, batch_size=BATCH, seed=SEED)
    return path


@pytest.fixture(scope="module")
def served(exported, images, tmp_path_factory):
    """Every signature's outputs, computed in a fresh process that cannot import tfxattr."""
    folder = tmp_path_factory.mktemp("served")
    inputs, out = str(folder / "inputs.npz"), str(folder / "out.npz")
    np.savez(inputs, images=images, explicit=np.array([1, 0, 2], np.int32), top1=np.full(3, -1, np.int32))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    run = subprocess.run([sys.executable, os.path.join(HERE, "load_without_tfxattr.py"), exported, inputs, out],
                         capture_output=True, text=True, env=env, cwd=str(folder))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "tfxattr modules: []" in run.stdout
    return dict(np.load(out))


def _reference(name, options, images, targets):
    """What explain() gives: the same code the signature traced (SmoothGrad's noise included: TF's stateless
    normal from the seed and each image's bytes, in both doors)."""
    method = tfxattr.get_method(name, **options)  # a wrapper's own `method` option is no keyword of explain()
    return tfxattr.explain("demo", images, method=method, targets=targets, batch_size=BATCH, progress=False,
                           seed=SEED).attribution


def _rel(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), np.finfo(np.float32).tiny)


def test_serving_default_is_the_model(served, images, demo_model):
    np.testing.assert_allclose(served["scores"], demo_model(images, training=False).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("key", list(METHODS))
@pytest.mark.parametrize("kind", ["explicit", "top1"])
def test_signature_equals_explain(served, images, key, kind):
    name, options = METHODS[key]
    sig = signature_name(key)
    got = {k: served[f"{sig}/{kind}/{k}"] for k in ("attributions", "maps", "targets", "scores")}
    want_targets = np.array([1, 0, 2]) if kind == "explicit" else served["scores"].argmax(-1)
    np.testing.assert_array_equal(got["targets"], want_targets)
    np.testing.assert_allclose(got["scores"], served["scores"][np.arange(3), want_targets], rtol=1e-6)
    ref = _reference(name, options, images, want_targets)
    assert got["attributions"].shape == ref.shape
    assert _rel(got["attributions"], ref) < TOLERANCE
    # maps: Explanation.map's reduction (a single-channel map signed, else the sum of |a| over channels)
    assert _rel(got["maps"], tfxattr.reduction.reduce_channels(ref)) < TOLERANCE


def test_signature_names():
    assert signature_name("ig+idgi") == "explain_ig_idgi"
    assert signature_name("gradcam++") == "explain_gradcam_plus_plus"
    assert signature_name("blur_ig+idgi") == "explain_blur_ig_idgi"


def test_saved_model_cli(exported, tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    np.save(tmp_path / "images.npy", np.full((2, 64, 64, 3), 128.0, np.float32))
    # TF >= 2.13 evaluates --input_exprs as Python literals only (no numpy calls): images come from a .npy file
    run = subprocess.run(cmd + ["run", "--dir", exported, "--tag_set", "serve", "--signature_def", "explain_ig_idgi",
                                "--inputs", f"images={tmp_path / 'images.npy'}", "--input_exprs", "targets=[-1,3]",
                                "--outdir", str(tmp_path)],
                         capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert run.returncode == 0, run.stderr[-3000:]
    attributions = np.load(tmp_path / "attributions.npy")
    targets = np.load(tmp_path / "targets.npy")
    assert attributions.shape == (2, 64, 64, 3) and np.all(np.isfinite(attributions))
    assert targets[1] == 3 and 0 <= targets[0] < 4


def test_explainer_model_in_tf_data(images):
    fn = explainer_model("demo", "ig+idgi", steps=STEPS, batch_size=BATCH)
    ds = tf.data.Dataset.from_tensor_slices((images, np.full(3, -1, np.int32))).batch(2).map(fn)
    attributions = np.concatenate([out["attributions"].numpy() for out in ds])
    targets = np.concatenate([out["targets"].numpy() for out in ds])
    ref = tfxattr.explain("demo", images, method="ig+idgi", steps=STEPS, batch_size=BATCH, progress=False)
    np.testing.assert_array_equal(targets, ref.targets)
    assert _rel(attributions, ref.attribution) < TOLERANCE


def test_unknown_method_did_you_mean(tmp_path):
    with pytest.raises(ValueError, match="did you mean 'ig\\+idgi'"):
        tfxattr.export("demo", str(tmp_path / "m"), methods=["ig+idgj"])
    assert not os.path.exists(tmp_path / "m")


@pytest.mark.parametrize("spec", ["xrai", "smooth:inner=xrai"])
def test_not_exportable_is_refused(tmp_path, spec):
    with pytest.raises(NotExportable, match="'xrai' cannot be exported: .*scikit-image"):
        tfxattr.export("demo", str(tmp_path / "m"), methods=[spec])
    assert not os.path.exists(tmp_path / "m")


def test_option_no_method_takes(tmp_path):
    with pytest.raises(ValueError, match="taken by none of the methods.*did you mean 'steps'"):
        tfxattr.export("demo", str(tmp_path / "m"), methods=["ig"], stpes=3)


@pytest.fixture(scope="module")
def loaded(exported):
    """The exported SavedModel loaded once in this process (loading ~25 signatures takes ~10 s)."""
    return tf.saved_model.load(exported)


def test_wrong_image_size_names_images(loaded):
    small = tf.zeros((1, 32, 32, 3), tf.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="images must be float32 pixels of shape"):
        loaded.signatures["explain_ig_idgi"](images=small, targets=tf.constant([-1]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="images must be"):
        loaded.signatures["serving_default"](images=small)
    with pytest.raises((ValueError, TypeError), match="images"):
        loaded.explain_ig_idgi(small, tf.constant([-1]))


def test_bad_targets_at_call_time(loaded):
    images = tf.zeros((2, 64, 64, 3), tf.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="targets must hold one class per image"):
        loaded.explain_gradient(images, tf.constant([-1]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="targets must be below"):
        loaded.explain_gradient(images, tf.constant([0, 99]))


def test_cli_export(tmp_path):
    from tfxattr.cli import main

    path = str(tmp_path / "cli" / "1")
    assert main(["export", "demo", path, "--methods", "ig+idgi", "gradcam", "--steps", "8"]) == 0
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "explain_ig_idgi", "explain_gradcam"}
    out = loaded.signatures["explain_ig_idgi"](images=tf.fill((1, 64, 64, 3), 100.0), targets=tf.constant([-1]))
    # IDGI is complete: the attributions sum to f(x) - f(black)
    black = loaded.signatures["serving_default"](images=tf.zeros((1, 64, 64, 3)))["scores"].numpy()
    t = int(out["targets"].numpy()[0])
    np.testing.assert_allclose(out["attributions"].numpy().sum(), out["scores"].numpy()[0] - black[0, t],
                               rtol=1e-4, atol=1e-4)


def test_cli_export_errors(tmp_path, capsys):
    from tfxattr.cli import main

    assert main(["export", "demo", str(tmp_path / "x"), "--methods", "xrai"]) == 2
    assert "'xrai' cannot be exported" in capsys.readouterr().err


def test_signature_edge_inputs_give_clear_answers():
    """A NaN pixel is refused by name, an empty batch gives empty outputs, and [0, 1] images sent to an 8-bit
    signature are flagged (pixels_ok) instead of silently explained as near-black 0..255 images."""
    fn = explainer_model("demo", "ig+idgi", steps=2)
    good = np.full((2, 64, 64, 3), 128.0, np.float32)
    good[0, :8] = 3.0
    good[1, :, :32] = 250.0
    out = fn(good, np.array([-1, 1], np.int32))
    assert out["pixels_ok"].numpy().tolist() == [True, True]
    assert out["pixels_ok"].numpy().dtype == bool
    scaled = fn(good / 255.0, np.array([-1, 1], np.int32))
    assert scaled["pixels_ok"].numpy().tolist() == [False, False]
    sixteen_bit = fn(good * 257.0, np.array([-1, 1], np.int32))
    assert sixteen_bit["pixels_ok"].numpy().tolist() == [False, False]
    empty = fn(np.zeros((0, 64, 64, 3), np.float32), np.zeros(0, np.int32))
    assert empty["attributions"].shape == (0, 64, 64, 3) and empty["maps"].shape == (0, 64, 64)
    assert empty["targets"].shape == (0,) and empty["pixels_ok"].shape == (0,)
    bad = good.copy()
    bad[1, 3, 3, 0] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="images must be finite pixels"):
        fn(bad, np.array([-1, 1], np.int32))


def test_a_cnn_method_on_a_vit_is_refused_before_tracing():
    with pytest.raises(ValueError, match="fullgrad"):
        explainer_model("demo_vit", "fullgrad")
