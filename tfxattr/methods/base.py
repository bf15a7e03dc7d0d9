"""The method base class and the registry of named methods."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Type

import numpy as np

from ..inputs import resolve_baseline


class Method:
    """A named combination of a path and an aggregator (or any other attribution rule).

    Subclasses set ``name``, ``summary`` (one line, shown by ``tfxattr methods``) and ``defaults``
    (every option and its default), and implement ``attribute``.
    """
    name = "method"
    summary = ""
    defaults: Dict[str, object] = {}

    def __init__(self, **options):
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            valid = ", ".join(sorted(self.defaults)) or "none"
            raise ValueError(f"unknown option(s) {unknown} for method {self.name!r}; valid options: {valid}")
        self.options = {**self.defaults, **options}
        self.validate()

    def validate(self):
        """Check ``self.options``; raise ValueError naming the option."""

    def attribute(self, adapter, images: np.ndarray, targets: np.ndarray, progress=False, seed=None) -> np.ndarray:
        """float32 (N,H,W,C) attributions of float32 pixel ``images`` for int ``targets``."""
        raise NotImplementedError

    def baselines(self, adapter, images):
        return resolve_baseline(self.options.get("baseline"), images, adapter.pixel_range,
                                self.options.get("blur_sigma", 20.0))

    def __repr__(self):
        return f"{type(self).__name__}({self.options})"


# -- registry -----------------------------------------------------------------------------
@dataclass(frozen=True)
class MethodSpec:
    """A registered name: a Method class plus preset options (``ig+idgi`` = IG with aggregator="idgi")."""
    cls: Type[Method]
    preset: Dict[str, object]
    summary: str

    @property
    def defaults(self) -> Dict[str, object]:
        return {**self.cls.defaults, **self.preset}

    def __call__(self, **options) -> Method:
        return self.cls(**{**self.preset, **options})


METHODS: Dict[str, MethodSpec] = {}


def register(name: str, cls: Type[Method], summary: str = None, **preset) -> MethodSpec:
    """Register ``cls`` under ``name``; ``preset`` options become this name's defaults."""
    unknown = sorted(set(preset) - set(cls.defaults))
    if unknown:
        raise ValueError(f"preset option(s) {unknown} are not options of {cls.__name__}")
    METHODS[name] = MethodSpec(cls, dict(preset), summary or cls.summary)
    return METHODS[name]


def get_method(name, **options) -> Method:
    """An instance of the method registered as ``name`` (case-insensitive) with ``options``."""
    if isinstance(name, Method):
        if options:
            raise ValueError("options cannot be given together with a Method instance")
        return name
    if not isinstance(name, str) or name.lower() not in METHODS:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(sorted(METHODS))}")
    return METHODS[name.lower()](**options)
