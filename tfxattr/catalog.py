"""The method catalog ``tfxattr methods`` prints: name, one-line summary, and why a method cannot be exported.

Listing the registry imports every method module, and with them TensorFlow (seconds). The rows are a pure
function of the package's source, so the command keeps them in a small JSON file keyed by a fingerprint
of that source (the path, size and modification time of every ``.py`` file of the package): the first
run builds it from the live registry, later runs read it without importing TensorFlow, and any edit,
upgrade or reinstall of the package changes the key. ``TFXATTR_CACHE`` names the folder (default:
``$XDG_CACHE_HOME/tfxattr`` or ``~/.cache/tfxattr``); a folder that cannot be written only costs the speed.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import List, Tuple

PACKAGE = os.path.dirname(os.path.abspath(__file__))


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("TFXATTR_CACHE") or os.path.join(base, "tfxattr")


def source_key(root: str = PACKAGE) -> str:
    """A fingerprint of every ``.py`` file below ``root``: relative path, size and modification time."""
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(folder, name)
            stat = os.stat(path)
            digest.update(f"{os.path.relpath(path, root)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:20]


def live_rows() -> List[Tuple[str, str, str]]:
    """(name, summary, why not exportable or "") of every registered method, from the registry itself."""
    from .methods import METHODS

    return [(name, spec.summary, spec.cls.not_exportable) for name, spec in sorted(METHODS.items())]


def method_rows() -> List[Tuple[str, str, str]]:
    """:func:`live_rows`, read from the cache when the package's source has not changed since it was written."""
    path = os.path.join(cache_dir(), f"methods-{source_key()}.json")
    try:
        with open(path) as f:
            return [tuple(row) for row in json.load(f)]
    except (OSError, ValueError):
        pass
    rows = live_rows()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=os.path.dirname(path), delete=False, suffix=".tmp") as f:
            json.dump(rows, f)
        os.replace(f.name, path)  # readers see the whole file or none
    except OSError:
        pass
    return rows
