"""Guided IG (Kapishnikov et al., CVPR 2021, Algorithm 1): an adaptive path plus an aggregator.

The path (:class:`~tfxattr.paths.adaptive.GuidedPath`) moves, at each of ``steps`` steps, the ``fraction`` of
features with the smallest absolute gradient toward the input, staying within ``max_dist`` (relative
L1) of the straight line; the engine walks it for chunks of ``batch_size`` images in lockstep.
``aggregator="riemann"`` is the paper's sum ``sum_k g_k * (x_{k+1} - x_k)``; ``"idgi"`` gives GuidedIG+IDGI.
"""
from __future__ import annotations

from ..checks import positive_float, positive_int
from ..paths.adaptive import GuidedPath
from .path import PathMethod


class GuidedIG(PathMethod):
    name = "guided_ig"
    summary = "Guided IG: adaptive path that first moves the features with the smallest gradient (fraction, max_dist)"
    defaults = {"aggregator": "riemann", "steps": 200, "fraction": 0.25, "max_dist": 0.02, "baseline": "black",
                "blur_sigma": 20.0}

    def validate(self):
        super().validate()
        positive_int(self.options["steps"], "steps")
        positive_float(self.options["fraction"], "fraction")
        positive_float(self.options["max_dist"], "max_dist", allow_zero=True)
        if self.options["fraction"] > 1 or self.options["max_dist"] > 1:
            raise ValueError(f"fraction and max_dist must lie in [0, 1], got fraction={self.options['fraction']}, "
                             f"max_dist={self.options['max_dist']}")

    def make_path(self, evaluator, images):
        o = self.options
        return GuidedPath(o["steps"], o["fraction"], o["max_dist"])
