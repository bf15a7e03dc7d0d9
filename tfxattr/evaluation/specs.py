"""``name:key=value,key=value`` specs for methods, metrics, models and data on the command line."""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import List


@dataclass(frozen=True)
class Spec:
    """A name plus options, e.g. ``Spec("ig+idgi", {"steps": 200})``; ``label`` is its canonical text."""
    name: str
    options: dict = field(default_factory=dict, hash=False)

    @property
    def label(self) -> str:
        if not self.options:
            return self.name
        return self.name + ":" + ",".join(f"{k}={_format_value(v)}" for k, v in sorted(self.options.items()))


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
    name, _, rest = text.strip().partition(":")
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


def _format_value(value) -> str:
    if isinstance(value, (list, tuple)):
        return "(" + ",".join(_format_value(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)
