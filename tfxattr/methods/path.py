"""Path methods: a path (which points) + an aggregator (how gradients become attributions).

A subclass only states its options and builds its path (``make_path``); the engine
(:func:`tfxattr.paths.engine.integrate`) runs fixed and adaptive paths alike, in chunks of ``batch_size``.
"""
from __future__ import annotations

import numpy as np

from ..paths.aggregators import PATH_AGGREGATORS, get_aggregator
from ..paths.engine import integrate
from ..paths.fixed import ArrayPath
from .base import Method

# how far a user path's last point may be from the images, relative to the largest pixel magnitude (at least 1):
# float32 rounding of (1 - a) b + a x stays far below it, a path that stops short or runs backwards far above
PATH_END_TOLERANCE = 1e-4


class PathMethod(Method):
    """Base for path methods; subclasses implement ``make_path(evaluator, images)``.

    ``aggregators``: the aggregator names this method accepts (the first is the default); the
    ``<name>+<aggregator>`` registry names are derived from it and :class:`Method` checks the
    ``aggregator`` option against it. Methods with a ``baseline`` option
    start their path there; the others get the images as ``b`` (BlurIG: the path defines its start).
    """
    aggregators = PATH_AGGREGATORS
    defaults = {"aggregator": "riemann"}

    def make_path(self, evaluator, images):
        raise NotImplementedError

    def fit_path(self, evaluator, images, baselines, targets):
        """The path for these images and targets: :meth:`make_path` unless the path depends on the model's
        values on the images (IG's adaptive schedule)."""
        return self.make_path(evaluator, images)

    def path_start(self, evaluator, images):
        """(N,H,W,C) pixels the path starts from (the ``x'`` of completeness, sum of attributions ~
        ``f(x) - f(x')``): the baseline of methods that have one; None when the path has no single start."""
        return self.baselines(evaluator, images) if "baseline" in self.options else None

    def attribute(self, evaluator, images, targets, progress=False, seed=None):
        baselines = self.baselines(evaluator, images) if "baseline" in self.options else images
        path = self.fit_path(evaluator, images, baselines, targets)
        return integrate(evaluator, path, get_aggregator(self.options["aggregator"]), images, baselines,
                         targets, evaluator.batch_size, progress=progress, desc=self.name)


class CustomPath(PathMethod):
    """Any user-given path (``path``: (S+1,H,W,C) or (N,S+1,H,W,C), baseline first, input last),
    left-point Riemann sum or IDGI."""
    name = "path"
    not_exportable = "its points are a user-given array fixed per explain() call, not a function of the served images"
    summary = "a user-supplied path (array of points from baseline to input), Riemann sum or IDGI"
    defaults = {"aggregator": "riemann", "path": None}

    def validate(self):
        super().validate()
        if self.options["path"] is None:
            raise ValueError("method 'path' needs the option path=<array (S+1,H,W,C) or (N,S+1,H,W,C)>")

    def make_path(self, evaluator, images):
        path = ArrayPath(self.options["path"], len(images), images.shape[1:])
        images = np.asarray(images, np.float32)
        gap = float(np.max(np.abs(path.array[:, -1] - images))) if images.size else 0.0
        tolerance = PATH_END_TOLERANCE * max(1.0, float(np.max(np.abs(images))) if images.size else 1.0)
        if gap > tolerance:
            raise ValueError(f"path must end at the input images (points ordered from baseline to input): its last "
                             f"point differs from the images by up to {gap:g} (tolerance {tolerance:g}). Make "
                             "path[..., -1, :, :, :] the images, or reverse a path given from input to baseline")
        return path

    def path_start(self, evaluator, images):
        return self.make_path(evaluator, images).array[:, 0].copy()
