"""Geometrically Guided Integrated Gradients (Rahman, Lewis, Plis; Algorithm 1): an ascent path plus
the per-feature maximum.

From each of ``points`` points ``b + k/(points-1) (x - b)`` on the straight line, take
``ascent_steps`` steps of gradient ascent on the class score, ``x <- x + lr * grad``, recording the
gradient before every step (:class:`~tfxattr.paths.AscentPath`); the attribution is the per-feature
(signed, per-channel) maximum of all recorded gradients (:class:`~tfxattr.aggregate.MaxGradient`,
line 10). No ``(x - b)`` factor (Sec. 3). ``lr`` acts on the images as given (pixel space here); the
paper's ImageNet preset ``ggig_paper`` (51 points, 100 steps, lr 1e-4) is applied literally. The
engine walks all (image, point) pairs in chunks of ``batch_size``.
"""
from __future__ import annotations

from ..checks import positive_float, positive_int
from ..paths import AscentPath
from .path import PathMethod


class GGIG(PathMethod):
    name = "ggig"
    summary = "Geometrically Guided IG: per-pixel max of gradients during ascent from points on the line"
    aggregators = ("max",)
    defaults = {"aggregator": "max", "points": 20, "ascent_steps": 10, "lr": 1e-4, "baseline": "black",
                "blur_sigma": 20.0}

    def validate(self):
        super().validate()
        positive_int(self.options["points"], "points")
        positive_int(self.options["ascent_steps"], "ascent_steps")
        positive_float(self.options["lr"], "lr", allow_zero=True)

    def make_path(self, evaluator, images):
        o = self.options
        return AscentPath(o["points"], o["ascent_steps"], o["lr"])
