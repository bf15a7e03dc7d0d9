"""The model keywords, declared once: :class:`ModelOptions`.

Every door that takes a model takes its keywords from here -- :func:`tfxattr.as_model`,
:func:`tfxattr.explain`, :func:`tfxattr.metrics.compute`, :func:`tfxattr.export`,
:func:`tfxattr.explainer_model` (:func:`takes_model_options` writes them into each door's signature and
docstring), the command line's model flags (:func:`add_model_flags`) and the options of a model spec in
``tfxattr eval`` (:data:`TEXT_OPTIONS`). A field is a keyword's name, its default, its check and its
one-line doc; a new model keyword is one field.

This module imports no TensorFlow: ``tfxattr --help`` builds the model flags from it.
"""
from __future__ import annotations

import dataclasses
import inspect
import os
import textwrap
from dataclasses import dataclass, field, fields
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

from .. import checks
from ..checks import known_keys, one_of, positive_int, renamed
from .precision import PRECISIONS

OUTPUTS = ("logit", "probability")
HEADS = ("softmax_logits", "softmax", "sigmoid_logits", "sigmoid")
# rows per model call: a ResNet-50's input gradients for 32 images fit in a few GB of (GPU) memory
DEFAULT_BATCH_SIZE = 32
# the docstring lines the model options section is wrapped to (the code's 120 columns, less the indent)
DOC_WIDTH = 112


def class_name_list(names) -> Optional[list]:
    """``names`` as a list of strings: a sequence, or a comma-separated string; None stays None."""
    if names is None:
        return None
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",")]
    try:
        names = [str(n) for n in names]
    except TypeError:
        raise ValueError(f"class_names must be a sequence of names, got {names!r}") from None
    if not all(n.strip() for n in names):
        raise ValueError(f"class_names has an empty name: {names!r}")
    return names


def class_names_from_text(text):
    """``--class-names``: None, a file (one name per line; blank lines are skipped) or a comma-separated list."""
    if text is None:
        return None
    if os.path.isfile(text):
        with open(text, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
        if not names:
            raise ValueError(f"--class-names: the file {text!r} holds no names")
        return names
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise ValueError(f"--class-names: an empty name in {text!r} (give a file with one name per line, or a "
                         "comma-separated list)")
    return names


def _index_or_name(text: str):
    """``--output-index``: an int, or an output key / layer name."""
    return int(text) if text.lstrip("-").isdigit() else text


# -- the checks: value -> the value kept (or a ValueError naming the keyword) --------------------------------
def _optional(check):
    return lambda value, name: None if value is None else check(value, name)


def _choice(choices):
    return lambda value, name: one_of(value, name, choices)


def _function(value, name):
    if not callable(value):
        raise ValueError(f"{name} must be a function (images -> what the model reads) or None, got {value!r}")
    return value


def _weights(value, name):
    from .sources import parse_weights  # no TensorFlow

    parse_weights(value)
    return value


def _output_index(value, name):
    if isinstance(value, str) or (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0):
        return value
    raise ValueError(f"{name} must be a non-negative int, an output key or an output layer name, got {value!r}")


def _input_shape(value, name):
    try:
        shape = tuple(value)
    except TypeError:
        shape = ()
    if len(shape) != 3 or not all(s is None or (isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                                and s > 0) for s in shape):
        raise ValueError(f"{name} must be (H, W, C): three positive ints (None for a free size), got {value!r}")
    return tuple(None if s is None else int(s) for s in shape)


def _strategy(value, name):
    from .devices import check_strategy  # TensorFlow: only when a strategy is given

    return check_strategy(value, name)


def _class_names(value, name):
    return tuple(class_name_list(value))


def _option(default, doc: str, check: Callable, flag: Optional[dict] = None, from_flag: Callable = None):
    """A field of :class:`ModelOptions`. ``flag``: its argparse keywords on the command line (None: it cannot
    be written as text; no ``choices`` where the check's one-line error with "did you mean" is wanted);
    ``from_flag``: the parsed flag -> the keyword's value."""
    return field(default=default, metadata={"doc": doc, "check": check, "flag": flag,
                                            "from_flag": from_flag or (lambda value: value)})


def _as_tuple(value):
    return None if value is None else tuple(value)


RANGE_FLAG = {"nargs": 2, "type": float, "metavar": ("LOW", "HIGH")}


@dataclass(frozen=True)
class ModelOptions:
    """How a model is read: the keywords of every door that takes a model (module docstring).

    Values are checked when the object is made (a ValueError names the keyword); ``pixel_range``,
    ``input_range`` and ``input_shape`` become tuples of numbers, ``class_names`` a tuple of strings.
    """
    output: str = _option("logit", '"logit" or "probability": the scalar f_c an attribution explains',
                          _choice(OUTPUTS), {"choices": OUTPUTS})
    batch_size: int = _option(DEFAULT_BATCH_SIZE, "rows per model call: the memory bound",
                              positive_int, {"type": int})
    preprocess: Optional[Callable] = _option(
        None, "a function applied to the images inside the gradient, before the model (a Keras application "
              "name brings its own preprocess_input)", _optional(_function))
    weights: Optional[str] = _option("imagenet", 'Keras applications: "imagenet", "none" (random) or a weights file',
                                     _weights, {})
    output_index: object = _option(
        None, "which output of a multi-output model: an int, an output key or an output layer name",
        _optional(_output_index), {"type": _index_or_name, "metavar": "INDEX_OR_NAME"})
    head: Optional[str] = _option(None, f"what the model's raw output is, one of {HEADS} (default: detected)",
                                  _optional(_choice(HEADS)), {})
    input_shape: Optional[Tuple] = _option(
        None, "(H, W, C) for a model that does not say it (subclassed models, callables)", _optional(_input_shape),
        {"nargs": 3, "type": int, "metavar": ("H", "W", "C")}, _as_tuple)
    num_classes: Optional[int] = _option(
        None, "the output width of a callable (default: probed on one image)",
        lambda value, name: positive_int(value, name, allow_none=True), {"type": int})
    pixel_range: Optional[Tuple[float, float]] = _option(
        None, "the range of the images' pixels (default: the model's input range; for a model whose range is "
              "unknown, the conventional range the values lie in)", _optional(checks.pixel_range), RANGE_FLAG,
        _as_tuple)
    input_range: Optional[Tuple[float, float]] = _option(
        None, "the range the model reads (default: what it declares: Keras applications and 'demo' 0..255, a "
              "leading Rescaling or Normalization its own; else unknown and images reach it unchanged). Both "
              "ranges known: images are mapped linearly onto the model's", _optional(checks.pixel_range),
        RANGE_FLAG, _as_tuple)
    class_names: Optional[Tuple[str, ...]] = _option(
        None, "one name per class, in the order of the model's outputs, so targets can be given by name (a "
              "sequence, a comma-separated string; on the command line also a file with one name per line; "
              "default: the model's own)", _optional(_class_names), {"metavar": "FILE_OR_LIST"},
        class_names_from_text)
    precision: str = _option(
        "float32", f"one of {PRECISIONS}: the dtype of the model's forward and backward passes (Keras models)",
        _choice(PRECISIONS), {})
    strategy: object = _option(
        None, "a tf.distribute.Strategy splitting each chunk across its replicas (None: the default device)",
        _optional(_strategy))

    def __post_init__(self):
        for f in fields(self):
            object.__setattr__(self, f.name, f.metadata["check"](getattr(self, f.name), f.name))

    @classmethod
    def of(cls, keywords: dict, owner: str, **door_defaults) -> "ModelOptions":
        """The options ``keywords`` give (over ``door_defaults``, a door's own defaults); an unknown keyword
        is refused naming ``owner`` and the closest keyword, a retired one with its new name."""
        known_keys(keywords, NAMES, "model option", owner)
        return cls(**{**door_defaults, **keywords})

    @classmethod
    def take(cls, keywords: dict, owner: str, **door_defaults) -> Tuple["ModelOptions", dict]:
        """``(the model options among keywords, the other keywords)``: a door whose ``**options`` also carry
        a method's or a metric's options."""
        renamed(keywords, NAMES, owner)
        mine = {k: v for k, v in keywords.items() if k in NAMES}
        return cls(**{**door_defaults, **mine}), {k: v for k, v in keywords.items() if k not in NAMES}

    def replace(self, **changes) -> "ModelOptions":
        return dataclasses.replace(self, **changes)

    def keywords(self) -> dict:
        """Name -> value of every option (values as they are: no copies)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def changed(self, **door_defaults) -> Tuple[str, ...]:
        """The options whose value is not the default (``door_defaults`` over the fields')."""
        base = ModelOptions(**door_defaults)
        return tuple(f.name for f in fields(self) if getattr(self, f.name) != getattr(base, f.name))


#: every model keyword, in declaration order
NAMES = tuple(f.name for f in fields(ModelOptions))
#: the keywords that can be written as text: command-line flags, options of a model spec ("demo:head=softmax")
TEXT_OPTIONS = tuple(f.name for f in fields(ModelOptions) if f.metadata["flag"] is not None)


def describe_options(**door_defaults) -> str:
    """One line per model keyword, ``name=default: doc`` (the section :func:`takes_model_options` adds)."""
    return "\n".join(textwrap.fill(f"``{f.name}={door_defaults.get(f.name, f.default)!r}``: {f.metadata['doc']}.",
                                   DOC_WIDTH, initial_indent="    ", subsequent_indent="        ")
                     for f in fields(ModelOptions))


def takes_model_options(*, others: bool = False, **door_defaults):
    """Decorator of a door ``fn(..., **keywords)``: its signature (``help()``, ``inspect.signature``) lists
    every :class:`ModelOptions` field as a keyword-only parameter with its default (``door_defaults`` over the
    field's), before ``**options`` when ``others`` (the door's ``**keywords`` also carry other options, e.g.
    a method's), and its docstring gains the one-line doc of each. The door reads them with
    :meth:`ModelOptions.of` (``others=False``) or :meth:`ModelOptions.take`; ``fn.model_defaults`` keeps
    ``door_defaults``."""
    unknown = sorted(set(door_defaults) - set(NAMES))
    if unknown:
        raise ValueError(f"takes_model_options: {unknown} are not model options; valid: {', '.join(NAMES)}")

    def decorate(fn):
        params = list(inspect.signature(fn).parameters.values())
        var = [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
        if len(var) != 1:
            raise TypeError(f"{fn.__name__} must take **keywords to take the model options")
        mine = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                                  default=door_defaults.get(f.name, f.default)) for f in fields(ModelOptions)]
        plain = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
        fn.__signature__ = inspect.signature(fn).replace(parameters=plain + mine + (var if others else []))
        section = "Model options (:class:`~tfxattr.models.ModelOptions`):"
        fn.__doc__ = f"{(fn.__doc__ or '').rstrip()}\n\n    {section}\n\n{describe_options(**door_defaults)}\n"
        fn.model_defaults = dict(door_defaults)
        return fn
    return decorate


# -- the command line ------------------------------------------------------------------------------------------
def add_model_flags(parser, names: Sequence[str] = TEXT_OPTIONS, defaults: Optional[dict] = None):
    """``--output``, ``--batch-size``, ... (``--name`` with ``_`` written ``-``): one flag per model keyword in
    ``names`` (keywords that can be written as text), with the keyword's doc and default."""
    defaults = defaults or {}
    for f in fields(ModelOptions):
        if f.name in names:
            if f.metadata["flag"] is None:
                raise ValueError(f"model option {f.name!r} cannot be given as text (a flag)")
            parser.add_argument("--" + f.name.replace("_", "-"), default=defaults.get(f.name, f.default),
                                help=f.metadata["doc"], **f.metadata["flag"])


def model_flags(args, names: Sequence[str] = TEXT_OPTIONS) -> dict:
    """The model keywords the flags of :func:`add_model_flags` parsed into ``args``."""
    return {f.name: f.metadata["from_flag"](getattr(args, f.name)) for f in fields(ModelOptions) if f.name in names}
