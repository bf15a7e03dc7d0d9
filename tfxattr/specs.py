"""``name:key=value,key=value`` specs for methods, metrics, models and data on the command line, in eval
configs and in ``get_method``; :func:`spec_label` is the one formatter of their canonical text (the labels of
a results store)."""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import List

import numpy as np

OPTIONS_SEPARATOR = ":"  # "name:key=value,..."


@dataclass(frozen=True)
class Spec:
    """A name plus options, e.g. ``Spec("ig+idgi", {"steps": 200})``; ``label`` is its canonical text."""
    name: str
    options: dict = field(default_factory=dict, hash=False)

    @property
    def label(self) -> str:
        return spec_label(self.name, self.options)


def spec_label(name: str, options: dict) -> str:
    """``name:key=value,...`` with the keys sorted (just ``name`` without options): the text a store records for a
    method or metric, so one computation has one label. Values as :func:`format_value` writes them."""
    if not options:
        return str(name)
    return f"{name}{OPTIONS_SEPARATOR}" + ",".join(f"{k}={format_value(v)}" for k, v in sorted(options.items()))


def format_value(value) -> str:
    """An option value as a spec writes it: ``str`` for scalars (so stored labels never change), ``(a,b)`` for
    lists and tuples, ``(ig:steps=20)`` for a Method (a wrapper's ``method``), ``array(shape)`` for an array."""
    if hasattr(value, "changed") and hasattr(value, "name"):  # a Method: its registered name and changed options
        return f"({spec_label(value.name, value.changed)})"
    if isinstance(value, np.ndarray) and value.ndim:  # an array (a user-given path); a 0-d one reads as its value
        return f"array{value.shape}"
    if isinstance(value, (list, tuple)):
        return "(" + ",".join(format_value(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)


def parse_spec(text, what: str = "spec") -> Spec:
    """``"ig+idgi:steps=200,baseline=black"`` -> ``Spec("ig+idgi", {"steps": 200, "baseline": "black"})``.

    Values are Python literals (ints, floats, tuples, True/False/None; "none"/"true"/"false" too),
    anything else is a string. Also accepts a ``Spec`` or a ``(name, options dict)`` pair.
    """
    if isinstance(text, Spec):
        return text
    if isinstance(text, tuple) and len(text) == 2 and isinstance(text[0], str) and isinstance(text[1], dict):
        return Spec(text[0].strip(), dict(text[1]))
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{what} must be a non-empty string like 'name:key=value,...', got {text!r}")
    name, _, rest = text.strip().partition(OPTIONS_SEPARATOR)
    options = {}
    for item in _split_top_level(rest):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"{what} {text!r}: option {item!r} is not key=value")
        options[key.strip()] = _parse_value(value.strip())
    return Spec(name.strip(), options)


def _split_top_level(text: str) -> List[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _parse_value(text: str):
    lowered = text.lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    if len(text) >= 2 and text[0] + text[-1] in ("()", "[]"):  # (input,last_block): a tuple of bare words
        items = tuple(_parse_value(v) for v in _split_top_level(text[1:-1]))
        return items if text[0] == "(" else list(items)
    return text
