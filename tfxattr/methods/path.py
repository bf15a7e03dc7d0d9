"""Path methods: a path (which points) + an aggregator (how gradients become attributions)."""
from __future__ import annotations

from ..aggregate import get_aggregator
from ..engine import integrate
from ..paths import ArrayPath
from ..checks import one_of
from .base import Method


class PathMethod(Method):
    """Base for IG-style methods; subclasses implement ``make_path(adapter, images)``."""
    defaults = {"aggregator": "riemann"}

    def validate(self):
        one_of(self.options["aggregator"], "aggregator", ("riemann", "idgi"))

    def make_path(self, adapter, images):
        raise NotImplementedError

    def attribute(self, adapter, images, targets, progress=False, seed=None):
        path = self.make_path(adapter, images)
        baselines = self.baselines(adapter, images) if "baseline" in self.options else images
        return integrate(adapter, path, get_aggregator(self.options["aggregator"]), images, baselines,
                         targets, adapter.batch_size, progress=progress, desc=self.name)


class CustomPath(PathMethod):
    """Any user-given path (``path``: (S+1,H,W,C) or (N,S+1,H,W,C), baseline first, input last),
    left-point Riemann sum or IDGI."""
    name = "path"
    summary = "a user-supplied path (array of points from baseline to input), Riemann sum or IDGI"
    defaults = {"aggregator": "riemann", "path": None}

    def validate(self):
        super().validate()
        if self.options["path"] is None:
            raise ValueError("method 'path' needs the option path=<array (S+1,H,W,C) or (N,S+1,H,W,C)>")

    def make_path(self, adapter, images):
        return ArrayPath(self.options["path"], len(images), images.shape[1:])
