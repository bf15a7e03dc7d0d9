"""The method base class and the registry of named methods.

A registered name is a Method class plus preset options (``ggig_paper`` = GGIG with the paper's
preset). A class that accepts several aggregators (``aggregators = ("riemann", "idgi")``, default
first) gets one derived name per other aggregator: registering ``ig`` also registers ``ig+idgi``.
An instance knows the name it was made under (``name``) and the options it was given (``given``);
validation checks options and never rewrites them, so one computation has one identity
(:attr:`Method.changed`: the options that differ from its registered name's defaults).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Type

from ..checks import RENAMED, did_you_mean, known_keys, renamed
from ..inputs import resolve_baseline
from ..registry import Registry

AGGREGATOR_SEPARATOR = "+"  # "<path method>+<aggregator>", e.g. "ig+idgi"
OPTIONS_SEPARATOR = ":"  # "<name>:<key>=<value>,...", the spec syntax (tfxattr.specs)


class Method:
    """A named attribution rule (a path plus an aggregator, a layer method, a wrapper, ...).

    Subclasses set ``name`` (the name they register under), ``summary`` (one line, shown by
    ``tfxattr methods``), ``defaults`` (every option and its default), ``aggregators`` when they
    accept an ``aggregator`` option (default first), and implement ``validate`` and ``attribute``.
    """
    name = "method"
    summary = ""
    defaults: Dict[str, object] = {}
    aggregators: Sequence[str] = ()
    # "" when the method has a graph form: its ``attribute`` is TensorFlow code that explain() runs chunk
    # by chunk and export traces whole; otherwise why not (shown by ``tfxattr methods`` and at export)
    not_exportable = ""
    class_specific = True  # False: the map does not depend on the explained class (attention rollout)
    # what the model must be (ARCHITECTURES): "vit", a keras-hub Vision Transformer (tfxattr.models.attention);
    # "cnn", a convolutional network (layer methods reading (N, H, W, C) activation maps); None: any model
    architecture = None
    # retired option names of this class that the glossary's table (checks.RENAMED) maps elsewhere: old -> new
    renamed_options: Dict[str, str] = {}

    def __init__(self, **options):
        self.check_option_names(options, "option")
        self.given = dict(options)
        self.options = {**self.defaults, **options}
        self.registered_defaults = dict(self.defaults)
        if self.aggregators:
            self.check_aggregator()
        self.validate()
        spec = METHODS.get(type(self).name)
        if spec is not None and spec.cls is type(self):  # made directly from its class: same identity
            _rename(self, spec.name)

    @classmethod
    def renames(cls) -> Dict[str, str]:
        """Old option name -> the name that replaced it: :data:`~tfxattr.checks.RENAMED` and ``renamed_options``."""
        return {**RENAMED, **cls.renamed_options}

    @classmethod
    def check_option_names(cls, given, what: str):
        """Refuse an old option name with its new one ("method 'ggig': option 'points' was renamed 'steps'"),
        then any unknown name with the closest valid ones."""
        renamed(given, cls.defaults, f"method {cls.name!r}", cls.renames())
        known_keys(given, cls.defaults, what, cls.name)

    def check_aggregator(self):
        agg = self.options["aggregator"]
        if agg not in self.aggregators:
            raise ValueError(f"aggregator must be one of {tuple(self.aggregators)} for method {self.name!r}, got "
                             f"{agg!r}{did_you_mean(agg, self.aggregators)}")

    def validate(self):
        """Check ``self.options`` (never change them); raise ValueError naming the option."""

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        r"""float32 (N,H,W,C) (or (N,H,W,1)) attributions of float32 pixel ``images`` for int ``targets``.

        ``evaluator``: a :class:`~tfxattr.models.contracts.GradientEvaluator` (layer methods need a
        :class:`~tfxattr.models.contracts.KerasEvaluator`). Written once for every door: called eagerly
        (numpy in, numpy out; loops are :mod:`tfxattr.batching`'s Python loops with a progress bar) and
        traced inside a ``tf.function`` by export (tensors in and out; the same calls build
        ``tf.while_loop`` loops). A method without a graph form sets :attr:`not_exportable`."""
        raise NotImplementedError

    def required_architecture(self) -> Optional[str]:
        """The architecture these options need (a wrapper: its base method's); None: any model."""
        return self.architecture

    def attribute_and_scores(self, evaluator, images, targets, progress=False, seed=None):
        """``(attributions, f_c (N,), class probability (N,))`` for a method that computes the explained value
        at the images on its way (Grad-CAM's backward pass), so that explain() needs no forward pass of its
        own; None (the default) for the others."""
        return None

    def export_refusal(self) -> str:
        """Why this method, with these options, cannot be traced into a SavedModel ("" when it can)."""
        return self.not_exportable

    def baselines(self, evaluator, images):
        return resolve_baseline(self.options.get("baseline"), images, evaluator.pixel_range,
                                self.options.get("blur_sigma", 20.0))

    @property
    def changed(self) -> Dict[str, object]:
        """The options that differ from the defaults of the name this instance is registered as."""
        return {k: v for k, v in self.options.items() if self.registered_defaults.get(k, object()) != v}

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r}, {self.changed})"


class Wrapper(Method):
    """A method around another registered method (as Captum's ``NoiseTunnel``): ``inner`` names the wrapped
    method (or is a Method instance, where :attr:`instance_allowed`), ``inner_options`` its options. Not
    ``method``: ``explain(model, x, "smooth", method=...)`` would collide with explain's own ``method``."""
    defaults = {"inner": None, "inner_options": None}
    instance_allowed = True
    # "base" was the wrapped method here, but a reference image in the glossary's table (checks.RENAMED);
    # "method" named it for a while, and collided with explain()'s own argument
    renamed_options = {"base": "inner", "base_options": "inner_options", "method": "inner",
                       "method_options": "inner_options"}

    def validate(self):
        method, options = self.options["inner"], self.options["inner_options"]
        if not (isinstance(method, str) or (self.instance_allowed and isinstance(method, Method))) \
                or (isinstance(method, str) and method.lower() == type(self).name):
            kind = "the name of another method or a Method instance" if self.instance_allowed else \
                "the name of another method"
            raise ValueError(f"inner must be {kind} (e.g. 'ig', 'ig+idgi'), got {method!r}")
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"inner_options must be a dict of options for {method!r} or None, got {options!r}")
        if isinstance(method, Method) and options:
            raise ValueError("inner_options cannot be given together with a Method instance as inner")
        self.wrapped()  # an unknown method or bad options fail here, with the wrapped method's own message

    def wrapped(self, **extra) -> Method:
        """The wrapped method with ``inner_options`` (and ``extra`` options)."""
        return get_method(self.options["inner"], **(self.options["inner_options"] or {}), **extra)

    def required_architecture(self):
        return self.wrapped().required_architecture()


ARCHITECTURES = {"cnn": "convolutional networks", "vit": "keras-hub Vision Transformers"}


def check_architecture(method: Method, evaluator) -> None:
    """Refuse, before any Keras trace, a method declared for another architecture than the evaluator's
    Keras model (read from its layers: a keras-hub ViT encoder makes it a ViT). Models without a Keras
    graph (SavedModels, callables) are left to the method."""
    from ..models.attention import has_vit_encoder

    need = method.required_architecture()
    model = getattr(evaluator, "keras_model", None)
    if need != "cnn" or model is None or not has_vit_encoder(model):
        return
    vit_methods = sorted(n for n, s in METHODS.items() if s.cls.architecture == "vit")
    name = getattr(evaluator, "name", model.name)
    raise ValueError(f"method {method.name!r} needs {ARCHITECTURES[need]} (architecture={need!r}, declared by the "
                     f"method or its base method): it reads (N, H, W, C) activation maps, and {name!r} is a Vision "
                     f"Transformer. Use a ViT method ({', '.join(vit_methods)}) or one for any model (e.g. 'ig', "
                     "'gradient', 'occlusion', 'rise')")


# -- registry -----------------------------------------------------------------------------
@dataclass(frozen=True)
class MethodSpec:
    """A registered name: a Method class plus preset options (``ig+idgi`` = IG with aggregator="idgi")."""
    name: str
    cls: Type[Method]
    preset: Dict[str, object]
    summary: str
    derived_from: Optional[str] = None  # "ig" for "ig+idgi"

    @property
    def defaults(self) -> Dict[str, object]:
        return {**self.cls.defaults, **self.preset}

    def __call__(self, **options) -> Method:
        method = self.cls(**{**self.preset, **options})
        method.given = dict(options)
        _rename(method, self.derived_from or self.name)
        return method


METHODS: Registry[MethodSpec] = Registry("method")


def register(name: str, cls: Type[Method], summary: str = None, **preset) -> MethodSpec:
    """Register ``cls`` under ``name``; ``preset`` options become this name's defaults.

    For every aggregator ``cls`` accepts besides its default, ``<name>+<aggregator>`` is registered too.
    """
    cls.check_option_names(preset, "preset option")
    spec = METHODS.register(name, MethodSpec(name, cls, dict(preset), summary or cls.summary))
    if cls.aggregators and "aggregator" not in preset:
        for agg in cls.aggregators[1:]:
            derived = _derive(spec, agg)
            METHODS.register(derived.name, derived)
    return spec


def _derive(spec: MethodSpec, aggregator: str) -> MethodSpec:
    return MethodSpec(f"{spec.name}{AGGREGATOR_SEPARATOR}{aggregator}", spec.cls,
                      {**spec.preset, "aggregator": aggregator}, f"{spec.summary}; aggregated with {aggregator}",
                      derived_from=spec.name)


def find_spec(name: str) -> MethodSpec:
    """The spec of a registered name, or of ``<registered path method>+<aggregator>`` for any
    aggregator the method accepts (one registered after the method included)."""
    key = name.lower() if isinstance(name, str) else name
    if key in METHODS:
        return METHODS[key]
    if isinstance(key, str):
        base, sep, agg = key.rpartition(AGGREGATOR_SEPARATOR)
        spec = METHODS.get(base)
        if sep and spec is not None and spec.derived_from is None and agg in spec.cls.aggregators \
                and "aggregator" not in spec.preset:
            return _derive(spec, agg)
    return METHODS.find(key)


def unregister(name: str) -> None:
    """Remove ``name`` and the names derived from it."""
    METHODS.find(name)  # an unknown name is refused, with the closest ones
    for key in [k for k, s in METHODS.items() if k == name or s.derived_from == name]:
        METHODS.unregister(key)


def get_method(name, **options) -> Method:
    """An instance of the method registered as ``name`` (case-insensitive) with ``options``.

    ``get_method("ig", aggregator="idgi")`` and ``get_method("ig+idgi")`` are the same method: both
    are named "ig+idgi" and have no changed options. ``name`` may carry options in the spec syntax of
    ``tfxattr eval`` and ``--method``: ``get_method("smooth:inner=ig+idgi,samples=10")``, which is how
    ``explain()`` names a wrapper's ``method`` (its own ``method`` argument is the method explained).
    """
    if isinstance(name, Method):
        if options:
            raise ValueError("options cannot be given together with a Method instance")
        return name
    if isinstance(name, str) and OPTIONS_SEPARATOR in name:
        from ..specs import parse_spec  # the one spec syntax (eval, the CLI, explain)

        spec = parse_spec(name, "method")
        twice = sorted(set(spec.options) & set(options))
        if twice:
            raise ValueError(f"option(s) {twice} given both in the method spec {name!r} and as keywords")
        name, options = spec.name, {**spec.options, **options}
    return find_spec(name)(**options)


def _rename(method: Method, base: str):
    """Give ``method`` the registered name of its (base name, aggregator) and that name's defaults."""
    spec = METHODS[base]
    if method.aggregators and "aggregator" not in spec.preset \
            and method.options["aggregator"] != spec.defaults.get("aggregator"):
        spec = find_spec(f"{base}{AGGREGATOR_SEPARATOR}{method.options['aggregator']}")
    method.name = spec.name
    method.registered_defaults = spec.defaults
