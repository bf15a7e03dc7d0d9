"""The eleven Keras ImageNet applications: specs, name lookup and model building."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import socket
from typing import Callable, Optional, Tuple

import keras
from keras import applications as _apps

_GCS = "https://storage.googleapis.com/tensorflow/keras-applications/"

# Per-operation socket timeout (seconds) for the ImageNet weights download: a blocked network
# fails within this time instead of hanging; a working download is not cut short.
DOWNLOAD_TIMEOUT = 20.0


class WeightsUnavailableError(FileNotFoundError):
    """ImageNet weights are neither in the Keras cache nor downloadable."""


@dataclasses.dataclass(frozen=True)
class AppSpec:
    """One Keras application: how to build, preprocess and split it."""

    name: str                      # canonical lower-case name, e.g. "resnet50v2"
    display_name: str              # Keras constructor name, e.g. "ResNet50V2"
    input_size: Tuple[int, int]    # native (H, W)
    preprocess: Callable = dataclasses.field(repr=False, compare=False)  # keras preprocess_input
    preprocess_mode: str           # "tf" ([-1,1]), "torch" (ImageNet mean/std) or "caffe" (BGR, mean)
    weights_file: str              # include_top ImageNet weights file name in the Keras cache
    weights_url: str
    weights_hash: Optional[str]    # md5 Keras checks the file against (None: not checked)
    last_block: str                # layer whose output is the last conv block's output
    penultimate_block: str         # layer whose output is the penultimate conv block's output
    constructor: Callable = dataclasses.field(repr=False, compare=False)

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        return (*self.input_size, 3)

    def cache_path(self) -> str:
        """Where Keras caches (and looks for) this model's ImageNet weights."""
        return os.path.join(keras_cache_dir(), "models", self.weights_file)

    def describe(self) -> str:
        h, w = self.input_size
        return (f"{self.display_name} ({self.name}): input {h}x{w}x3, preprocess={self.preprocess_mode}, "
                f"last_block={self.last_block}, penultimate_block={self.penultimate_block}")


def _spec(name, display, size, module, mode, wfile, wdir, whash, last, penult, ctor):
    return AppSpec(name=name, display_name=display, input_size=(size, size),
                   preprocess=module.preprocess_input, preprocess_mode=mode, weights_file=wfile,
                   weights_url=_GCS + wdir + "/" + wfile, weights_hash=whash, last_block=last,
                   penultimate_block=penult, constructor=ctor)


# Block choices (all verified as split points of the functional graph, see tests). The last block is
# the final feature map (7x7 at 224, 8x8/10x10 at 299); the penultimate block is the last split point
# of the stage before, at twice the resolution, as in the IIA paper (its L-1 for ResNet is 14x14):
#  DenseNet: final bn+relu / output of dense block 3 (14x14).  InceptionV3: mixed10 / mixed7 (17x17).
#  MobileNetV2: final 1x1 conv+relu / block 12 (14x14).  ResNetV2: post-activation / last stage-4
#  block before its stride-2 block (14x14).  VGG: pools of blocks 5 / 4 (14x14).
#  Xception: block 14 sepconv act / block 12 residual add (19x19; renamed, see _stable_names).
_SPECS = (
    _spec("densenet121", "DenseNet121", 224, _apps.densenet, "torch",
          "densenet121_weights_tf_dim_ordering_tf_kernels.h5", "densenet",
          "9d60b8095a5708f2dcce2bca79d332c7", "relu", "conv4_block24_concat", _apps.densenet.DenseNet121),
    _spec("densenet169", "DenseNet169", 224, _apps.densenet, "torch",
          "densenet169_weights_tf_dim_ordering_tf_kernels.h5", "densenet",
          "d699b8f76981ab1b30698df4c175e90b", "relu", "conv4_block32_concat", _apps.densenet.DenseNet169),
    _spec("densenet201", "DenseNet201", 224, _apps.densenet, "torch",
          "densenet201_weights_tf_dim_ordering_tf_kernels.h5", "densenet",
          "1ceb130c1ea1b78c3bf6114dbdfd8807", "relu", "conv4_block48_concat", _apps.densenet.DenseNet201),
    _spec("inception_v3", "InceptionV3", 299, _apps.inception_v3, "tf",
          "inception_v3_weights_tf_dim_ordering_tf_kernels.h5", "inception_v3",
          "9a0d58056eeedaa3f26cb7ebd46da564", "mixed10", "mixed7", _apps.inception_v3.InceptionV3),
    _spec("mobilenet_v2", "MobileNetV2", 224, _apps.mobilenet_v2, "tf",
          "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5", "mobilenet_v2",
          None, "out_relu", "block_12_add", _apps.mobilenet_v2.MobileNetV2),
    _spec("resnet50v2", "ResNet50V2", 224, _apps.resnet_v2, "tf",
          "resnet50v2_weights_tf_dim_ordering_tf_kernels.h5", "resnet",
          "3ef43a0b657b3be2300d5770ece849e0", "post_relu", "conv4_block5_out", _apps.resnet_v2.ResNet50V2),
    _spec("resnet101v2", "ResNet101V2", 224, _apps.resnet_v2, "tf",
          "resnet101v2_weights_tf_dim_ordering_tf_kernels.h5", "resnet",
          "6343647c601c52e1368623803854d971", "post_relu", "conv4_block22_out", _apps.resnet_v2.ResNet101V2),
    _spec("resnet152v2", "ResNet152V2", 224, _apps.resnet_v2, "tf",
          "resnet152v2_weights_tf_dim_ordering_tf_kernels.h5", "resnet",
          "a49b44d1979771252814e80f8ec446f9", "post_relu", "conv4_block35_out", _apps.resnet_v2.ResNet152V2),
    _spec("vgg16", "VGG16", 224, _apps.vgg16, "caffe",
          "vgg16_weights_tf_dim_ordering_tf_kernels.h5", "vgg16",
          "64373286793e3c8b2b4e3219cbf3544b", "block5_pool", "block4_pool", _apps.vgg16.VGG16),
    _spec("vgg19", "VGG19", 224, _apps.vgg19, "caffe",
          "vgg19_weights_tf_dim_ordering_tf_kernels.h5", "vgg19",
          "cbe5617147190e668d6c5d5026f83318", "block5_pool", "block4_pool", _apps.vgg19.VGG19),
    _spec("xception", "Xception", 299, _apps.xception, "tf",
          "xception_weights_tf_dim_ordering_tf_kernels.h5", "xception",
          "0a58e3b7378bc2990ea3b43d5981f1f6", "block14_sepconv2_act", "block12_add", _apps.xception.Xception),
)

SPECS = {s.name: s for s in _SPECS}
NAMES = tuple(SPECS)


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_ALIASES = {}
for _s in _SPECS:
    _ALIASES[_key(_s.name)] = _s.name
    _ALIASES[_key(_s.display_name)] = _s.name


def get(name) -> AppSpec:
    """The AppSpec for ``name`` (case-insensitive; '_', '-', ' ' ignored, e.g. "InceptionV3")."""
    if isinstance(name, AppSpec):
        return name
    canonical = _ALIASES.get(_key(name)) if isinstance(name, str) else None
    if canonical is None:
        raise ValueError(f"unknown Keras application {name!r}; valid names: {', '.join(NAMES)}")
    return SPECS[canonical]


def keras_cache_dir() -> str:
    """The Keras cache root, read at call time: $KERAS_HOME, else ~/.keras (as Keras does)."""
    if "KERAS_HOME" in os.environ:
        base = os.environ["KERAS_HOME"]
    else:
        home = os.path.expanduser("~")
        base = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    return os.path.expanduser(base)


@contextlib.contextmanager
def _socket_timeout(seconds):
    old = socket.getdefaulttimeout()
    if old is None or old > seconds:
        socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _unavailable(spec: AppSpec, target: str, cause: BaseException, had_file: bool) -> WeightsUnavailableError:
    where = ("is in the Keras cache but fails its md5 check "
             f"({spec.weights_hash}; replace it)" if had_file else "is not in the Keras cache")
    return WeightsUnavailableError(
        f"ImageNet weights for {spec.display_name} are not available offline: {spec.weights_file} {where} "
        f"and downloading it failed ({type(cause).__name__}: {cause}). "
        f"Fetch it on a machine with internet from {spec.weights_url} and put it at {target} "
        f"(the Keras cache: $KERAS_HOME/models, default ~/.keras/models), "
        f"or pass weights=PATH (CLI: --weights PATH) to a local weights file.")


def _md5_ok(path: str, md5: Optional[str]) -> bool:
    if md5 is None:
        return True
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest() == md5


def fetch_weights(name) -> str:
    """Path of the cached ImageNet weights file, downloading it if needed (raises WeightsUnavailableError)."""
    spec = get(name)
    cache = keras_cache_dir()
    target = os.path.join(cache, "models", spec.weights_file)
    fallback = os.path.join("/tmp", ".keras")  # Keras' own fallback for an unwritable cache
    candidates = [target, os.path.join(fallback, "models", spec.weights_file)]
    had_file = False
    for path in candidates:
        if os.path.isfile(path):
            had_file = True
            if _md5_ok(path, spec.weights_hash):
                return path
    with contextlib.suppress(OSError):
        os.makedirs(os.path.join(cache, "models"), exist_ok=True)
    base = cache if os.access(cache, os.W_OK) else fallback
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT):
            return keras.utils.get_file(spec.weights_file, spec.weights_url, cache_subdir="models",
                                        file_hash=spec.weights_hash, cache_dir=base)
    except Exception as err:  # noqa: BLE001 - keras raises bare Exception on URL failures
        raise _unavailable(spec, target, err, had_file) from err


def _stable_names(spec: AppSpec, model) -> None:
    # Xception's residual Add layers are auto-named ("add_11", "add_23", ...) depending on how many
    # Add layers the session has created; give them stable names block2_add ... block13_add.
    if spec.name == "xception":
        adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
        for i, layer in enumerate(adds):
            layer.name = f"block{i + 2}_add"


def build(name, weights="imagenet", classifier_activation=None):
    """The include_top model at native size; logits unless ``classifier_activation="softmax"``.

    ``weights``: "imagenet" (Keras cache or download), None (random init) or a path to an
    .h5 / .weights.h5 / .keras file.
    """
    spec = get(name)
    path = None
    if isinstance(weights, str) and weights == "imagenet":
        path = fetch_weights(spec)
    elif weights is not None:
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"weights file for {spec.display_name} not found: {path!r}")
    model = spec.constructor(include_top=True, weights=None, classes=1000,
                             classifier_activation=classifier_activation)
    _stable_names(spec, model)
    if path is not None:
        model.load_weights(path)
    return model
