"""XRAI (Kapishnikov et al., ICCV 2019) over any tfxattr method, through ``saliency.core.XRAI``.

The base attribution (PAIR's ``base_attribution``) comes from any registered method (``inner``, with
``inner_options``), batched over all images (default: IG,
averaged over a black and a white baseline, as XRAI averages IG over the image's min and max
baselines). ``saliency.core.XRAI`` then segments each image (Felzenszwalb at six scales) and ranks
regions greedily by attribution density. It runs unchanged on NumPy 2; the one case it gets wrong
is a constant image (its min-max normalisation divides by zero and segments NaNs): such an image
gets a single region here.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..checks import one_of, positive_float
from ..progress import progress_bar
from .base import Wrapper


class XRAI(Wrapper):
    """Region map (N, H, W, 1): each region holds its gain density; ``result="ranks"`` gives the
    region ranks instead (1 = most important). :meth:`regions` returns both."""
    name = "xrai"
    summary = "XRAI regions ranked by a base attribution (inner=any method; default IG over black and white)"
    not_exportable = ("its segmentation (Felzenszwalb at six scales, scikit-image) and greedy region ranking "
                      "(PAIR's saliency.core.XRAI, NumPy) run outside TensorFlow")
    defaults = {**Wrapper.defaults, "inner": "ig", "baselines": ("black", "white"), "algorithm": "full",
                "area_threshold": 1.0, "result": "map"}
    instance_allowed = False  # one instance per baseline is made from the name and options

    def validate(self):
        super().validate()
        baselines = self.options["baselines"]
        if baselines is not None and (isinstance(baselines, str) or not len(baselines)):
            raise ValueError(f"baselines must be a non-empty list (e.g. ['black', 'white']) or None, got {baselines!r}")
        one_of(self.options["algorithm"], "algorithm", ("full", "fast"))
        positive_float(self.options["area_threshold"], "area_threshold")
        if self.options["area_threshold"] > 1:
            raise ValueError(f"area_threshold must be in (0, 1], got {self.options['area_threshold']!r}")
        one_of(self.options["result"], "result", ("map", "ranks"))

    def base_attribution(self, adapter, images, targets, progress=False, seed=None) -> np.ndarray:
        """The wrapped method's attributions; averaged over ``baselines`` when the method takes a baseline."""
        method = self.wrapped()
        baselines = self.options["baselines"]
        if "baseline" not in method.defaults or "baseline" in (self.options["inner_options"] or {}) \
                or baselines is None:
            return method.attribute(adapter, images, targets, progress=progress, seed=seed)
        attrs = [self.wrapped(baseline=b).attribute(adapter, images, targets, progress=progress, seed=seed)
                 for b in baselines]
        return np.mean(attrs, axis=0)

    def regions(self, adapter, images, targets, progress=False, seed=None):
        """``(maps (N,H,W) float32 gain densities, ranks (N,H,W) int, 1 = most important region)``."""
        from saliency.core import XRAI as PairXRAI
        from saliency.core import XRAIParameters

        base = self.base_attribution(adapter, images, targets, progress=progress, seed=seed)
        params = XRAIParameters(area_threshold=self.options["area_threshold"], return_xrai_segments=True,
                                flatten_xrai_segments=True, algorithm=self.options["algorithm"])
        xrai = PairXRAI()
        maps, ranks = [], []
        with progress_bar(len(images), self.name, progress) as bar:
            for x, a in zip(images, base):
                a = np.broadcast_to(a, x.shape) if a.shape[-1] == 1 else a
                segments = [np.ones(x.shape[:2], bool)] if np.ptp(x) == 0 else None
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    out = xrai.GetMaskWithDetails(x.astype(np.float64), _no_model, segments=segments,
                                                  base_attribution=np.asarray(a, np.float64), extra_parameters=params)
                maps.append(out.attribution_mask)
                ranks.append(out.segments)
                bar.update(1)
        return np.stack(maps).astype(np.float32), np.stack(ranks).astype(np.int32)

    def attribute(self, adapter, images, targets, progress=False, seed=None):
        maps, ranks = self.regions(adapter, images, targets, progress=progress, seed=seed)
        out = maps if self.options["result"] == "map" else ranks.astype(np.float32)
        return out[..., None]


def _no_model(*args, **kwargs):
    raise RuntimeError("XRAI was given a base attribution and must not call the model")
