"""The method base class and the registry of named methods."""
from __future__ import annotations

import functools
from typing import Callable, Dict

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


# -- option checks ------------------------------------------------------------------------
def positive_int(options, key):
    v = options[key]
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{key} must be a positive integer, got {v!r}")


def positive_float(options, key, allow_zero=False):
    v = options[key]
    ok = isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) and np.isfinite(v)
    if not ok or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{key} must be a {'non-negative' if allow_zero else 'positive'} number, got {v!r}")


def one_of(options, key, choices):
    if options[key] not in choices:
        raise ValueError(f"{key} must be one of {tuple(choices)}, got {options[key]!r}")


# -- registry -----------------------------------------------------------------------------
METHODS: Dict[str, Callable[..., Method]] = {}
SUMMARIES: Dict[str, str] = {}


def register(name: str, factory: Callable[..., Method], summary: str = None, **preset):
    """Register ``factory`` under ``name``; ``preset`` options are fixed defaults of this name."""
    if preset:
        base = factory

        @functools.wraps(base, updated=())
        def factory(**options):  # noqa: F811 - a preset wraps the base factory
            return base(**{**preset, **options})
    METHODS[name] = factory
    SUMMARIES[name] = summary or getattr(factory, "summary", "")
    return factory


def get_method(name, **options) -> Method:
    if isinstance(name, Method):
        if options:
            raise ValueError("options cannot be given together with a Method instance")
        return name
    if not isinstance(name, str) or name.lower() not in METHODS:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(sorted(METHODS))}")
    return METHODS[name.lower()](**options)
