"""Argument checks with one style: ``check(value, name, ...)`` returns the value or raises a
ValueError that names the argument (and, for a choice, the closest valid names)."""
from __future__ import annotations

import difflib
from typing import Iterable, Optional

import numpy as np

# how many close matches a "did you mean" hint lists
CLOSE_MATCHES = 3


def positive_int(value, name: str, allow_none: bool = False):
    """``value`` as an int >= 1 (bools refused)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a positive integer{extra}, got {value!r}")
    return int(value)


def positive_float(value, name: str, allow_zero: bool = False):
    """``value`` as a finite float > 0 (>= 0 with ``allow_zero``)."""
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool) \
        and np.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a {kind} number, got {value!r}")
    return float(value)


def number(value, name: str, low=None, high=None) -> float:
    """``value`` as a finite float within [low, high] (either bound may be None)."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and np.isfinite(value)
    if not ok or (low is not None and value < low) or (high is not None and value > high):
        bounds = f" >= {low}" if low is not None else ""
        if low is not None and high is not None:
            bounds = f" in [{low}, {high}]"
        elif high is not None:
            bounds = f" <= {high}"
        raise ValueError(f"{name} must be a number{bounds}, got {value!r}")
    return float(value)


def boolean(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def one_of(value, name: str, choices: Iterable):
    """``value`` if it is one of ``choices``; else a ValueError listing them and the closest ones."""
    choices = tuple(choices)
    if value in choices:
        return value
    raise ValueError(f"{name} must be one of {choices}, got {value!r}{did_you_mean(value, choices)}")


def did_you_mean(value, choices: Iterable) -> str:
    """``" (did you mean 'x'?)"`` for a string close to one of ``choices``, else ``""``."""
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, [str(c) for c in choices], n=CLOSE_MATCHES)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def pixel_range(value, name: str = "pixel_range") -> tuple:
    """``(low, high)`` as finite floats with low < high."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be (low, high) numbers, got {value!r}") from err
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be finite with low < high, got {value!r}")
    return (lo, hi)


# Option names retired by the glossary (CONTRIBUTING.md, "Option names"): old name -> the name that replaced
# it. An old name is refused with a pointer to the new one, never read silently.
RENAMED = {
    "base": "baseline",            # a metric's reference image (a wrapped method is `method`)
    "base_options": "inner_options",  # a wrapped method's options (smooth, xrai)
    "points": "steps",             # a count of path points
    "draws": "samples",            # a count of random draws
    "max_sigma": "blur_sigma",     # a blur width
    "blur_radius": "blur_sigma",
    "max_n": "top_channels",
    "target": "targets",
}


def renamed(given: Iterable[str], valid: Iterable[str], owner: str, renames: Optional[dict] = None):
    """Refuse any key of ``given`` that is an old name (``renames``, default :data:`RENAMED`) of a key in
    ``valid``: "<owner>: option 'points' was renamed 'steps'"."""
    renames = RENAMED if renames is None else renames
    valid = set(valid)
    for key in given:
        if key not in valid and renames.get(key) in valid:
            raise ValueError(f"{owner}: option {key!r} was renamed {renames[key]!r}")


def known_keys(given: Iterable[str], valid: Iterable[str], what: str, owner: Optional[str] = None):
    """Raise a ValueError naming every key of ``given`` not in ``valid``, with close matches (an old name
    of a valid key is refused with its new name first)."""
    given = list(given)
    renamed(given, valid, repr(owner) if owner else what)
    valid = sorted(valid)
    unknown = sorted(set(given) - set(valid))
    if unknown:
        hints = "".join(did_you_mean(u, valid) for u in unknown)
        where = f" for {owner!r}" if owner else ""
        raise ValueError(f"unknown {what}(s) {unknown}{where}{hints}; valid: {', '.join(valid) or 'none'}")
