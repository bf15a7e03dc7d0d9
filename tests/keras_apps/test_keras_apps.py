"""keras_apps: names, specs, model structure (split points), preprocessing, weights handling."""
import dataclasses
import socket
import threading
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_apps
from keras_apps import registry

ALIASES = {
    "DenseNet121": "densenet121", "densenet-169": "densenet169", "DENSENET201": "densenet201",
    "InceptionV3": "inception_v3", "inceptionv3": "inception_v3", "inception_v3": "inception_v3",
    "MobileNetV2": "mobilenet_v2", "mobilenetv2": "mobilenet_v2", "ResNet50V2": "resnet50v2",
    "resnet50_v2": "resnet50v2", "ResNet101V2": "resnet101v2", "resnet152V2": "resnet152v2",
    "VGG16": "vgg16", "vgg_19": "vgg19", "Xception": "xception",
}
EXPECTED_SIZE = {n: (299, 299) if n in ("inception_v3", "xception") else (224, 224) for n in keras_apps.NAMES}


# --------------------------------------------------------------------------- names / specs
def test_names_and_aliases():
    assert keras_apps.NAMES == ("densenet121", "densenet169", "densenet201", "inception_v3", "mobilenet_v2",
                                "resnet50v2", "resnet101v2", "resnet152v2", "vgg16", "vgg19", "xception")
    for name in keras_apps.NAMES:
        spec = keras_apps.get(name)
        assert spec.name == name and keras_apps.get(spec.display_name) is spec
        assert spec.input_size == EXPECTED_SIZE[name]
        assert spec.weights_url.endswith("/" + spec.weights_file)
        assert spec.weights_file.endswith("_tf_dim_ordering_tf_kernels.h5") or "kernels_1.0_224" in spec.weights_file
    for alias, name in ALIASES.items():
        assert keras_apps.get(alias).name == name
    assert keras_apps.get("ResNet50V2").display_name == "ResNet50V2"
    assert keras_apps.get("resnet50v2").weights_file == "resnet50v2_weights_tf_dim_ordering_tf_kernels.h5"


@pytest.mark.parametrize("bad", ["resnet50", "vgg", "", "efficientnetb0", 42])
def test_unknown_name_lists_valid_names(bad):
    with pytest.raises(ValueError) as info:
        keras_apps.get(bad)
    assert all(n in str(info.value) for n in keras_apps.NAMES)


def test_spec_is_frozen():
    spec = keras_apps.get("vgg16")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "x"


# --------------------------------------------------------------------------- graph helpers
def _parents(tensor):
    """The input tensors of the node that made ``tensor`` in the model's own graph (its ``_keras_history``; a
    layer also used by a split model made from this one has further nodes)."""
    operation, node_index, _ = tensor._keras_history
    return operation._inbound_nodes[node_index].input_tensors


def _is_split_point(model, layer):
    """True if every path from the model input to its output passes through ``layer``."""
    source = model.inputs[0]._keras_history.operation
    sink = model.outputs[0]
    if layer is sink._keras_history.operation:
        return True
    seen, stack = {id(sink)}, [sink]
    while stack:
        tensor = stack.pop()
        if tensor._keras_history.operation is source:
            return False  # reached the input while avoiding ``layer``
        for parent in _parents(tensor):
            if parent._keras_history.operation is not layer and id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)
    return True


def test_split_point_check_detects_non_split_points():
    x = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(x)
    b = keras.layers.Conv2D(4, 3, padding="same", name="b")(a)
    s = keras.layers.Add(name="s")([a, b])
    y = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(s))
    m = keras.Model(x, y)
    assert _is_split_point(m, m.get_layer("a")) and _is_split_point(m, m.get_layer("s"))
    assert not _is_split_point(m, m.get_layer("b"))  # skip connection a -> s bypasses b


# --------------------------------------------------------------------------- models
def test_build_structure_and_blocks(keras_app):
    """The graph is the same at any input size: by default at a small one; keras_apps.build (native) when slow."""
    name, model, native = keras_app
    spec = keras_apps.get(name)
    h, w = spec.input_size if native else model.inputs[0].shape[1:3]
    assert tuple(model.inputs[0].shape) == (None, h, w, 3)
    assert tuple(model.outputs[0].shape) == (None, 1000)
    head = model.layers[-1]
    assert isinstance(head, keras.layers.Dense)
    assert head.activation is keras.activations.linear  # logits by default
    for block in (spec.last_block, spec.penultimate_block):
        layer = model.get_layer(block)  # raises if missing
        assert len(layer.output.shape) == 4, (block, layer.output.shape)
        assert _is_split_point(model, layer), f"{name}: {block} is not a split point"
    last = model.get_layer(spec.last_block)
    penultimate = model.get_layer(spec.penultimate_block)
    assert model.layers.index(penultimate) < model.layers.index(last)
    # the penultimate block has the resolution of the stage before the last (IIA's L-1: 14x14 at 224)
    assert penultimate.output.shape[1] > last.output.shape[1]
    # the last block is the final feature map: only pooling/flatten/dense (no conv) follow it
    after = model.layers[model.layers.index(last) + 1:]
    assert not any(isinstance(layer, keras.layers.Conv2D) for layer in after), [layer.name for layer in after]


def test_xception_block_names_are_session_independent():
    a = keras_apps.build("xception", weights=None)
    b = keras_apps.build("xception", weights=None)
    names = [layer.name for layer in a.layers if isinstance(layer, keras.layers.Add)]
    assert names == [f"block{i}_add" for i in range(2, 14)]
    assert names == [layer.name for layer in b.layers if isinstance(layer, keras.layers.Add)]


def test_softmax_option_and_logits_forward():
    x = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    spec = keras_apps.get("mobilenet_v2")
    logits_model = keras_apps.build("mobilenet_v2", weights=None)
    soft_model = keras_apps.build("mobilenet_v2", weights=None, classifier_activation="softmax")
    soft_model.set_weights(logits_model.get_weights())
    xp = spec.preprocess(tf.constant(x))
    logits = logits_model(xp).numpy()
    probs = soft_model(xp).numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), probs, atol=1e-5)


# --------------------------------------------------------------------------- preprocessing
@pytest.mark.parametrize("name", ["densenet121", "resnet50v2", "vgg16"])  # torch, tf, caffe modes
def test_preprocess_differentiable_in_tf_function(name):
    spec = keras_apps.get(name)
    w = tf.constant(np.random.default_rng(1).normal(size=(1, 8, 8, 3)).astype("float32"))

    @tf.function
    def grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(spec.preprocess(x) * w)
        return tape.gradient(y, x)

    x = tf.constant(np.random.default_rng(2).uniform(0, 255, (1, 8, 8, 3)).astype("float32"))
    g = grad(x).numpy()
    assert np.all(np.isfinite(g)) and np.abs(g).sum() > 0
    # the preprocess is affine per channel: check the gradient value for each mode
    scale = {"tf": np.full(3, 1 / 127.5), "torch": 1 / (255 * np.array([0.229, 0.224, 0.225])),
             "caffe": np.ones(3)}[spec.preprocess_mode]
    wn = w.numpy()[..., ::-1] if spec.preprocess_mode == "caffe" else w.numpy()
    np.testing.assert_allclose(g, wn * scale, rtol=1e-5)


def test_preprocess_modes():
    modes = {n: keras_apps.get(n).preprocess_mode for n in keras_apps.NAMES}
    assert {n for n, m in modes.items() if m == "torch"} == {"densenet121", "densenet169", "densenet201"}
    assert {n for n, m in modes.items() if m == "caffe"} == {"vgg16", "vgg19"}
    x = tf.fill((1, 2, 2, 3), 255.0)
    np.testing.assert_allclose(keras_apps.get("xception").preprocess(x).numpy(), 1.0)


# --------------------------------------------------------------------------- weights
@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Empty Keras cache in tmp_path and no DNS, so any download fails at once."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (test: offline)")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    return tmp_path / "kh"


@pytest.mark.parametrize("name", ["resnet50v2", "xception"])
def test_imagenet_weights_unavailable_offline(offline, name, monkeypatch):
    spec = keras_apps.get(name)
    lookups = []
    no_dns = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: lookups.append(host) or no_dns(host, *a, **k))
    with pytest.raises(keras_apps.WeightsUnavailableError) as info:
        keras_apps.build(name, weights="imagenet")
    assert lookups == ["storage.googleapis.com"]  # fails at the first lookup: no retries
    msg = str(info.value)
    expected_path = str(offline / "models" / spec.weights_file)
    assert spec.weights_file in msg and spec.weights_url in msg and expected_path in msg
    assert "weights=PATH" in msg and "--weights PATH" in msg
    assert isinstance(info.value, FileNotFoundError)
    assert spec.cache_path() == expected_path


def test_download_attempt_times_out(monkeypatch, tmp_path):
    """A server that accepts but never answers must not hang the download: the read times out (after
    DOWNLOAD_TIMEOUT, 1 s here). Without the timeout the server hangs up after 30 s and the test fails."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    conns = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        hang_up = time.monotonic() + 30
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass
            if time.monotonic() > hang_up:
                for c in conns:
                    c.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("KERAS_HOME", str(tmp_path))
        monkeypatch.setattr(registry, "DOWNLOAD_TIMEOUT", 1.0)
        spec = dataclasses.replace(keras_apps.get("mobilenet_v2"),
                                   weights_url=f"http://127.0.0.1:{srv.getsockname()[1]}/w.h5")
        with pytest.raises(keras_apps.WeightsUnavailableError) as info:
            keras_apps.fetch_weights(spec)
        assert isinstance(info.value.__cause__, TimeoutError), repr(info.value.__cause__)
        assert len(conns) == 1  # one attempt
        assert socket.getdefaulttimeout() is None  # restored
    finally:
        stop.set()
        thread.join()
        for c in conns:
            c.close()
        srv.close()


def test_missing_weights_path_raises(tmp_path):
    missing = tmp_path / "nope.weights.h5"
    with pytest.raises(FileNotFoundError, match="nope.weights.h5"):
        keras_apps.build("vgg16", weights=str(missing))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # keras legacy .h5 saving
def test_weights_from_path_and_from_cache(offline, tmp_path):
    spec = keras_apps.get("mobilenet_v2")
    src = keras_apps.build("mobilenet_v2", weights=None)
    kernel = src.get_layer("predictions").kernel.numpy()
    path = tmp_path / "m.weights.h5"
    src.save_weights(str(path))
    loaded = keras_apps.build("MobileNetV2", weights=str(path))
    np.testing.assert_array_equal(loaded.get_layer("predictions").kernel.numpy(), kernel)
    # a legacy .h5 in the Keras cache (as Keras downloads it) is used without network access
    (offline / "models").mkdir(parents=True)
    src.save(str(offline / "models" / spec.weights_file))
    cached = keras_apps.build("mobilenet_v2", weights="imagenet")
    np.testing.assert_array_equal(cached.get_layer("predictions").kernel.numpy(), kernel)


def test_corrupt_cached_file_reported(offline):
    spec = keras_apps.get("vgg16")
    (offline / "models").mkdir(parents=True)
    (offline / "models" / spec.weights_file).write_bytes(b"not weights")
    with pytest.raises(keras_apps.WeightsUnavailableError, match="md5"):
        keras_apps.fetch_weights("vgg16")


# --------------------------------------------------------------------------- class names
def test_class_names():
    names = keras_apps.class_names()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert all(isinstance(n, str) and n for n in names)
    assert names[0] == "tench" and names[1] == "goldfish" and names[999] == "toilet_tissue"
    assert names[207] == "golden_retriever" and names[281] == "tabby"
    raw = keras_apps.class_names(unique=False)
    assert raw[134] == raw[517] == "crane" and raw[638] == raw[639] == "maillot"
    ids = keras_apps.wnids()
    assert len(set(ids)) == 1000 and ids == sorted(ids) and ids[0] == "n01440764"
    top = keras_apps.decode_predictions(np.eye(1000)[[207]], top=2)
    assert top[0][0][:2] == ("n02099601", "golden_retriever")


def test_class_names_match_tfds_wnids():
    import importlib.util
    import os

    found = importlib.util.find_spec("tensorflow_datasets")
    path = found and os.path.join(found.submodule_search_locations[0], "datasets", "imagenet2012", "labels.txt")
    assert path and os.path.exists(path), "tensorflow-datasets (a dependency) ships imagenet2012/labels.txt"
    with open(path) as f:
        assert keras_apps.wnids() == f.read().split()
