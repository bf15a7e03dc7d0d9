"""Where models come from: one ordered registry of model sources.

``explain``, ``as_model``, the CLI (``tfxattr models``) and the evaluation runner all recognise a
model through :func:`find_source`: the first source whose ``matches`` accepts the object wins.
A source turns the object into a :class:`Loaded` (the differentiable model plus what the source
knows about it: preprocessing, class names, input shape, weights). A new kind of model is one
``register_source(ModelSource(...))`` call.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence

from ..checks import did_you_mean
from ..registry import Registry

WEIGHT_NONE = "none"  # the spelling of "random weights" on the command line and in specs
EIGHT_BIT = (0.0, 255.0)  # Keras applications and the demo model read 8-bit pixel values
#: the attribute of a Keras model object that names its classes (``model.class_names = [...]``)
CLASS_NAMES_ATTR = "class_names"


@dataclass
class Loaded:
    """A model ready for the adapter. ``model``: a ``keras.Model`` or a TF callable
    ``(N,H,W,C) -> (N, classes)`` (or a dict/list of outputs); the rest may be None (unknown)."""
    model: Any
    name: str
    source: str
    preprocess: Optional[Callable] = None
    class_names: Optional[Sequence[str]] = None
    head: Optional[str] = None         # what the raw output is (tfxattr.models.objective.HEADS); None: detect
    input_shape: Optional[tuple] = None
    input_range: Optional[tuple] = None  # the range the model reads; None: implied by its first layer, or unknown
    weights: Optional[str] = None      # what the weights are: "imagenet", a file path, "none" (random)
    keep: Any = None                   # objects that must stay alive with the adapter (a loaded SavedModel)

    @property
    def random_weights(self) -> bool:
        return self.weights == WEIGHT_NONE


@dataclass(frozen=True)
class ModelSource:
    """One kind of model: ``matches(obj)`` recognises it, ``load(obj, weights)`` loads it and
    ``check(obj, weights)`` fails early (before any loading) when it cannot be loaded."""
    name: str
    summary: str
    matches: Callable[[Any], bool]
    load: Callable[[Any, Optional[str]], Loaded]
    check: Optional[Callable[[Any, Optional[str]], None]] = None


SOURCES: Registry[ModelSource] = Registry("model source")  # tried in order: the first that recognises wins


def register_source(source: ModelSource, before: Optional[str] = None) -> ModelSource:
    """Add ``source`` at the end, or just before the source named ``before`` (to take precedence)."""
    return SOURCES.register(source.name, source, before=before)


def unregister_source(name: str) -> None:
    SOURCES.unregister(name)


def parse_weights(weights) -> Optional[str]:
    """``"imagenet"``, a file path, or None for random weights (``None`` or "none" in any case)."""
    if weights is None or (isinstance(weights, str) and weights.lower() == WEIGHT_NONE):
        return None
    if isinstance(weights, os.PathLike):
        return os.fspath(weights)
    if not isinstance(weights, str):
        raise ValueError(f"weights must be 'imagenet', 'none' or a file path, got {weights!r}")
    return weights


def find_source(model) -> ModelSource:
    """The first registered source that recognises ``model``; a ValueError listing them otherwise."""
    for source in SOURCES.values():
        if source.matches(model):
            return source
    kinds = "; ".join(f"{name}: {summary}" for name, summary in SOURCES.summaries().items())
    hint = ""
    if isinstance(model, (str, os.PathLike)):
        names = _string_names()
        hint = (f"{did_you_mean(os.fspath(model), names)}: no such file or directory, and not a model name "
                f"({', '.join(names)})")
    raise ValueError(f"unknown model {model!r}{hint}. Model sources: {kinds}")


def check(model, weights="imagenet") -> ModelSource:
    """Fail early (a clear error, nothing loaded) when ``model`` cannot be loaded; return its source."""
    source = find_source(model)
    if source.check is not None:
        source.check(model, parse_weights(weights))
    return source


def load(model, weights="imagenet") -> Loaded:
    """``model`` loaded by its source (``weights`` applies to the sources that take weights)."""
    source = check(model, weights)
    return source.load(model, parse_weights(weights))


def describe() -> List[tuple]:
    """(name, summary) of every source and of every model name a string can give (``tfxattr models``)."""
    import keras_apps

    rows = list(SOURCES.summaries().items())
    rows.append(("", ""))
    from ..demo import DEMO_IMAGE_SIZE

    rows.append(("demo", f"the shipped {DEMO_IMAGE_SIZE}x{DEMO_IMAGE_SIZE} shapes classifier "
                         "(trained by scripts/train_demo_model.py)"))
    rows.append(("demo_vit", f"the shipped {DEMO_IMAGE_SIZE}x{DEMO_IMAGE_SIZE} shapes Vision Transformer (keras-hub; "
                             "trained by scripts/train_demo_vit.py)"))
    for n, (preset, _, _) in KERAS_HUB_VITS.items():
        rows.append((n, f"keras-hub ViTImageClassifier, preset {preset} (weights='none': random, from its config)"))
    for n in keras_apps.NAMES:
        s = keras_apps.get(n)
        rows.append((n, f"{s.display_name} {s.input_size[0]}x{s.input_size[1]} (weights file {s.weights_file})"))
    return rows


def _string_names() -> List[str]:
    import keras_apps

    return ["demo", "demo_vit", *KERAS_HUB_VITS, *keras_apps.NAMES]


# -- the built-in sources, in the order they are tried ---------------------------------------------
def _is_keras_model(obj) -> bool:
    import keras

    return isinstance(obj, keras.Model) or (hasattr(obj, "layers") and hasattr(obj, "inputs"))


def _load_keras_model(model, weights) -> Loaded:
    return Loaded(model, getattr(model, "name", type(model).__name__), "keras_model",
                  class_names=declared_class_names(model))


def declared_class_names(model) -> Optional[List[str]]:
    """The class names a Keras model object carries: its ``class_names`` attribute (a sequence of
    strings; :func:`tfxattr.demo.load_demo_model` sets it), else the demo models' names when the model
    is a demo model by its saved name (it survives ``model.save`` and ``keras.models.load_model``)."""
    names = getattr(model, CLASS_NAMES_ATTR, None)
    if isinstance(names, (list, tuple)) and names and all(isinstance(n, str) for n in names):
        return list(names)
    from ..demo import DEMO_CLASS_NAMES, DEMO_MODEL_NAMES

    outputs = getattr(model, "outputs", None) or []
    if getattr(model, "name", None) in DEMO_MODEL_NAMES and len(outputs) == 1 \
            and outputs[0].shape[-1] == len(DEMO_CLASS_NAMES):
        return list(DEMO_CLASS_NAMES)
    return None


def _is_demo(obj) -> bool:
    return isinstance(obj, str) and obj == "demo"


# the shipped demo models named by a string, loaded once per process: every explain("demo", ...) then reuses
# one model object and the adapters (traced functions) cached on it; load_demo_model() still gives a fresh copy
_SHIPPED = {}


def _shipped(name: str, load):
    if name not in _SHIPPED:
        _SHIPPED[name] = load()
    return _SHIPPED[name]


def _load_demo(_, weights) -> Loaded:
    from ..demo import DEMO_CLASS_NAMES, load_demo_model

    return Loaded(_shipped("demo", load_demo_model), "demo", "demo", class_names=list(DEMO_CLASS_NAMES),
                  input_range=EIGHT_BIT)


def _is_demo_vit(obj) -> bool:
    return isinstance(obj, str) and obj == "demo_vit"


def _load_demo_vit(_, weights) -> Loaded:
    from ..demo import DEMO_CLASS_NAMES, load_demo_vit

    return Loaded(_shipped("demo_vit", load_demo_vit), "demo_vit", "demo_vit", class_names=list(DEMO_CLASS_NAMES),
                  input_range=EIGHT_BIT)


# keras-hub ViTs by name: the keras-hub preset (downloaded for weights="imagenet") and its configuration
# (built offline with random weights for weights="none"); pixels are mapped to [-1, 1] like the presets
KERAS_HUB_VITS = {"vit_b16": ("vit_base_patch16_224_imagenet",
                              dict(image_shape=(224, 224, 3), patch_size=16, num_layers=12, num_heads=12,
                                   hidden_dim=768, mlp_dim=3072), 1000)}


def _is_keras_hub_vit(obj) -> bool:
    return isinstance(obj, str) and obj in KERAS_HUB_VITS


def _load_keras_hub_vit(name, weights) -> Loaded:
    import keras_hub

    preset, config, classes = KERAS_HUB_VITS[name]
    if weights == "imagenet":
        try:
            model = keras_hub.models.ViTImageClassifier.from_preset(preset, activation=None)
        except Exception as err:  # noqa: BLE001 - keras-hub raises many kinds for a failed download
            raise ValueError(f"model {name!r}: could not load the keras-hub preset {preset!r} ({type(err).__name__}); "
                             "offline, pass weights='none' for random weights") from err
    else:
        model = keras_hub.models.ViTImageClassifier(keras_hub.models.ViTBackbone(**config), classes, activation=None)
        if weights is not None:
            model.load_weights(weights)
    return Loaded(model, name, "keras_hub_vit", preprocess=lambda x: x / 127.5 - 1.0, head="softmax_logits",
                  input_range=EIGHT_BIT, weights=WEIGHT_NONE if weights is None else weights)


def _is_path(obj) -> bool:
    return isinstance(obj, (str, os.PathLike))


def _is_saved_model(obj) -> bool:
    return _is_path(obj) and os.path.isdir(os.fspath(obj))


def _load_saved_model(path, weights) -> Loaded:
    import tensorflow as tf

    path = os.fspath(path)
    try:
        loaded = tf.saved_model.load(path)
    except Exception as err:  # noqa: BLE001 - TF raises many kinds for a directory that is no SavedModel
        raise ValueError(f"could not load the SavedModel directory {path!r}: {type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}") from err
    shape = None
    if hasattr(loaded, "serve") and callable(loaded.serve):
        call = loaded.serve
        for cf in getattr(call, "_list_all_concrete_functions_for_serialization", lambda: [])():
            args = cf.structured_input_signature[0]
            if args:
                shape = tuple(args[0].shape[1:])
                break
    elif "serving_default" in getattr(loaded, "signatures", {}):
        sig = loaded.signatures["serving_default"]
        kw = sig.structured_input_signature[1]
        if len(kw) != 1:
            raise ValueError(f"SavedModel {path!r}: serving_default takes {len(kw)} inputs; expected one image input")
        arg_name, arg_spec = next(iter(kw.items()))
        shape = tuple(arg_spec.shape[1:])

        def call(x, _sig=sig, _n=arg_name):
            return _sig(**{_n: x})
    elif callable(loaded):
        call = loaded
    else:
        raise ValueError(f"SavedModel {path!r} has neither a 'serve' endpoint nor a 'serving_default' signature")
    return Loaded(call, os.path.basename(path.rstrip("/")), "saved_model",
                  input_shape=shape if shape is not None and len(shape) == 3 else None, keep=loaded)


KERAS_FILE_SUFFIXES = (".keras", ".h5")


def _is_keras_file(obj) -> bool:
    return _is_path(obj) and os.path.isfile(os.fspath(obj)) and os.fspath(obj).endswith(KERAS_FILE_SUFFIXES)


def _load_keras_file(path, weights) -> Loaded:
    import keras

    path = os.fspath(path)
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001 - Keras raises many kinds (even "file not found") for a bad file
        why = _unreadable_keras_file(path) or f"Keras says {type(err).__name__}: {str(err).splitlines()[0]}"
        raise ValueError(f"the model file {path!r} exists but cannot be read as a Keras model: {why}") from err
    return Loaded(model, os.path.splitext(os.path.basename(path))[0], "keras_file",
                  class_names=declared_class_names(model))


# the first bytes of an HDF5 file (Keras' legacy .h5 format)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# what a Keras 3 .keras archive holds
KERAS_ARCHIVE_FILES = ("config.json", "model.weights.h5")


def _unreadable_keras_file(path) -> Optional[str]:
    """Why a model file that exists is not a Keras model, when its bytes say it (None: they do not)."""
    import zipfile

    if os.path.getsize(path) == 0:
        return "the file is empty"
    if path.endswith(".h5"):
        with open(path, "rb") as f:
            if f.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
                return "it is not an HDF5 file (an .h5 model starts with the HDF5 signature)"
        return None
    if not zipfile.is_zipfile(path):
        return (f"it is not a zip archive (a .keras file is a zip holding {' and '.join(KERAS_ARCHIVE_FILES)}; "
                "a truncated download or another format renamed .keras?)")
    with zipfile.ZipFile(path) as archive:
        missing = [name for name in KERAS_ARCHIVE_FILES if name not in archive.namelist()]
    if missing:
        return f"the zip archive has no {' and no '.join(missing)} (not saved by model.save)"
    return None


def _is_keras_app(obj) -> bool:
    import keras_apps

    if not isinstance(obj, str):
        return False
    try:
        keras_apps.get(obj)
    except ValueError:
        return False
    return True


def _check_keras_app(name, weights) -> None:
    import keras_apps

    app = keras_apps.get(name)
    if weights == "imagenet":
        keras_apps.fetch_weights(app)  # raises WeightsUnavailableError saying where to put the file
    elif weights is not None and not os.path.isfile(weights):
        raise ValueError(f"model {app.name!r}: weights file {weights!r} not found")


def _load_keras_app(name, weights) -> Loaded:
    import keras_apps

    app = keras_apps.get(name)
    return Loaded(keras_apps.build(app.name, weights=weights), app.name, "keras_app", preprocess=app.preprocess,
                  class_names=keras_apps.class_names(), head="softmax_logits", input_range=EIGHT_BIT,
                  weights=WEIGHT_NONE if weights is None else weights)


def _load_callable(fn, weights) -> Loaded:
    from .compat import autograph

    return Loaded(autograph(fn), getattr(fn, "__name__", type(fn).__name__), "callable")


register_source(ModelSource("keras_model", "a keras.Model object (Functional, Sequential or subclassed)",
                            _is_keras_model, _load_keras_model))
register_source(ModelSource("demo", "'demo': the shipped shapes classifier", _is_demo, _load_demo))
register_source(ModelSource("demo_vit", "'demo_vit': the shipped shapes Vision Transformer", _is_demo_vit,
                            _load_demo_vit))
register_source(ModelSource("keras_hub_vit", f"a keras-hub ViT by name ({', '.join(KERAS_HUB_VITS)}; weights="
                            "'imagenet' downloads the preset, 'none' builds it with random weights)",
                            _is_keras_hub_vit, _load_keras_hub_vit))
register_source(ModelSource("saved_model", "a SavedModel directory (tf.saved_model.save or model.export)",
                            _is_saved_model, _load_saved_model))
register_source(ModelSource("keras_file", "a .keras or .h5 file", _is_keras_file, _load_keras_file))
register_source(ModelSource("keras_app", "a Keras application name (keras_apps; weights='imagenet', 'none' or a "
                            "file)", _is_keras_app, _load_keras_app, _check_keras_app))
register_source(ModelSource("callable", "a TF-differentiable callable (N,H,W,C) -> (N, classes)", callable,
                            _load_callable))
