"""Blur IG (Xu et al., CVPR 2020, Eq. 4): integrate along a path of ever stronger Gaussian blur."""
from __future__ import annotations

from ..checks import boolean, positive_float, positive_int
from ..paths import BlurPath
from .path import PathMethod


class BlurIG(PathMethod):
    """PAIR's BlurIG path (``max_sigma``, ``steps``, ``grad_step``, ``sqrt``), batched; no baseline:
    the path starts at the image blurred with ``max_sigma``. ``aggregator="idgi"`` gives BlurIG+IDGI."""
    name = "blur_ig"
    summary = "Blur IG: integrate along a Gaussian-blur path (max_sigma, steps, grad_step, sqrt)"
    defaults = {"aggregator": "riemann", "steps": 100, "max_sigma": 50.0, "grad_step": 0.01, "sqrt": False}

    def validate(self):
        super().validate()
        positive_int(self.options["steps"], "steps")
        positive_float(self.options["max_sigma"], "max_sigma")
        positive_float(self.options["grad_step"], "grad_step")
        boolean(self.options["sqrt"], "sqrt")

    def make_path(self, evaluator, images):
        o = self.options
        return BlurPath(o["steps"], o["max_sigma"], o["grad_step"], o["sqrt"])
