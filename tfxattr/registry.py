"""One registry type for every extension point: methods, aggregators, metrics, model sources, data sources.

A :class:`Registry` maps names to entries in registration order (model and data sources are tried in
that order: the first that recognises an input wins). It refuses a duplicate name, removes a name,
lists one-line summaries, and answers an unknown name with the closest registered ones::

    METHODS.register("gxi", spec)          # ValueError: a method named 'gxi' is already registered
    METHODS.find("ig+idgj")                # ValueError: unknown method 'ig+idgj'; did you mean 'ig+idgi'? ...
    METHODS.unregister("gxi")
    METHODS.summaries()                    # {"ig": "Integrated Gradients ...", ...}

It is a read-only ``Mapping`` otherwise (``name in METHODS``, ``METHODS[name]``, ``sorted(METHODS)``,
``METHODS.items()``): entries change only through :meth:`register` and :meth:`unregister`.
"""
from __future__ import annotations

from typing import Callable, Dict, Generic, Iterator, Mapping, Optional, TypeVar

from .checks import did_you_mean

T = TypeVar("T")


def _summary_of(entry) -> str:
    return str(getattr(entry, "summary", "") or "")


class Registry(Mapping[str, T], Generic[T]):
    """Named entries of one ``kind`` ("method", "metric", ...), in registration order.

    ``summary(entry)`` gives an entry's one-line summary (default: its ``summary`` attribute)."""

    def __init__(self, kind: str, summary: Callable[[T], str] = _summary_of):
        self.kind = kind
        self._summary = summary
        self._entries: Dict[str, T] = {}

    # -- changing -----------------------------------------------------------------------------------
    def register(self, name: str, entry: T, before: Optional[str] = None) -> T:
        """Add ``entry`` as ``name`` (at the end, or just before the entry ``before``); a name already
        registered is refused (unregister it first)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries:
            raise ValueError(f"a {self.kind} named {name!r} is already registered")
        if before is None:
            self._entries[name] = entry
            return entry
        self.find(before)  # an unknown anchor is named, with did-you-mean
        items = list(self._entries.items())
        at = [k for k, _ in items].index(before)
        self._entries = dict(items[:at] + [(name, entry)] + items[at:])
        return entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` (an unknown name is refused, with the closest registered ones)."""
        self.find(name)
        del self._entries[name]

    # -- reading -----------------------------------------------------------------------------------
    def find(self, name) -> T:
        """The entry registered as ``name``; ValueError naming the closest registered names otherwise."""
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        raise ValueError(f"unknown {self.kind} {name!r}{did_you_mean(name, self._entries)}; available: "
                         f"{', '.join(sorted(self._entries))}")

    def summaries(self) -> Dict[str, str]:
        """Name -> one-line summary, in registration order."""
        return {name: self._summary(entry) for name, entry in self._entries.items()}

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._entries)})"
