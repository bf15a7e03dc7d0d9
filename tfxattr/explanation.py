"""The result of ``explain``: attributions, their channel-reduced maps (:mod:`tfxattr.reduction`), and ways to
look at them."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import visualize
from .checks import positive_int
from .reduction import check_reduction, reduce_channels


@dataclass
class Explanation:
    """``attribution``: float32 (N,H,W,C), or (H,W,C) when one image was explained.

    ``method``: the registered name of the method; ``options``: every option of that method;
    ``run``: how it was run (output, batch_size, seed, model), which does not change the method.
    ``scores``: the explained value f_c of each image (a logit or a probability, per ``run["output"]``);
    ``probabilities``: the probability of each image's target class.
    ``map``: the (N,)H,W map that metrics, ``tfxattr eval``, the figures and an exported model's ``maps``
    all use: ``reduce`` over channels by :func:`tfxattr.reduction.reduce_channels` (default "auto": a
    single-channel map as it is, signed; several channels: the sum of |a|).
    """
    attribution: np.ndarray
    targets: np.ndarray
    method: str
    options: dict = field(default_factory=dict)
    run: dict = field(default_factory=dict)
    images: Optional[np.ndarray] = None
    pixel_range: tuple = (0.0, 255.0)
    class_names: Optional[list] = None
    reduce: str = "auto"
    scores: Optional[np.ndarray] = None
    probabilities: Optional[np.ndarray] = None

    def __post_init__(self):
        check_reduction(self.reduce, "reduce")

    @property
    def single(self) -> bool:
        return self.attribution.ndim == 3

    @property
    def map(self) -> np.ndarray:
        return reduce_channels(self.attribution, self.reduce)

    def _batched(self):
        a = self.attribution[None] if self.single else self.attribution
        imgs = None if self.images is None else (self.images[None] if self.images.ndim == 3 else self.images)
        t = np.atleast_1d(self.targets)
        return a, imgs, t

    def overlay(self, index: int = 0, alpha: float = visualize.OVERLAY_ALPHA) -> np.ndarray:
        """uint8 (H,W,3): the heatmap of image ``index`` over the image."""
        a, imgs, _ = self._batched()
        if imgs is None:
            raise ValueError("this Explanation holds no images to overlay")
        heat = reduce_channels(a[index], self.reduce)
        return visualize.overlay(imgs[index], heat, alpha=alpha, pixel_range=self.pixel_range)

    def title(self, index: int = 0) -> str:
        """The figure's title: the method with the options that differ from its registered defaults,
        then the class, the explained score (a logit or a probability, per ``run["output"]``) and the
        class probability of image ``index``."""
        from .methods.base import find_spec

        try:
            defaults = find_spec(self.method).defaults
        except ValueError:  # a name that is not (or no longer) registered: every option is shown
            defaults = {}
        target = int(np.atleast_1d(self.targets)[index])
        score = None if self.scores is None else np.atleast_1d(self.scores)[index]
        probability = None if self.probabilities is None else np.atleast_1d(self.probabilities)[index]
        return visualize.figure_title(self.method, visualize.changed_options(self.options, defaults),
                                      self.label(index), target, score, probability,
                                      self.run.get("output", "logit"))

    def plot(self, index: int = 0, dpi: int = visualize.DPI):
        """A matplotlib Figure of image ``index``: image | heatmap | overlay panels, :meth:`title`
        and a colour bar of the map's values (displayed inline by notebooks)."""
        a, imgs, _ = self._batched()
        if imgs is None:
            raise ValueError("this Explanation holds no images to plot")
        heat = reduce_channels(a[index], self.reduce)
        return visualize.explanation_figure(imgs[index], heat, self.title(index), pixel_range=self.pixel_range,
                                            reduce=self.reduce, dpi=dpi, channels=a.shape[-1])

    def save(self, path: str, index: Optional[int] = None, scale: Optional[int] = None) -> list:
        """Write the :meth:`plot` figure as RGB PNG(s) (JPEG for a .jpg or .jpeg ``path``). Several images:
        ``path`` gets ``_<i>`` suffixes.

        ``scale`` multiplies the resolution (default 1: about 1100 x 400 pixels for a square image).
        """
        a, imgs, _ = self._batched()
        if imgs is None:
            raise ValueError("this Explanation holds no images to save")
        positive_int(scale, "scale", allow_none=True)
        indices = range(len(a)) if index is None else [index]
        root, ext = os.path.splitext(os.fspath(path))
        ext = ext or ".png"
        visualize.figure_format(root + ext)  # a suffix it cannot write fails before any figure is drawn
        written = []
        for i in indices:
            target = f"{root}{'' if len(indices) == 1 else f'_{i}'}{ext}"
            written.append(visualize.save_png(self.plot(i, dpi=visualize.DPI * (scale or 1)), target))
        return written

    def label(self, index: int = 0) -> str:
        t = int(np.atleast_1d(self.targets)[index])
        return self.class_names[t] if self.class_names and t < len(self.class_names) else str(t)

    def __repr__(self):
        return (f"Explanation(method={self.method!r}, attribution={self.attribution.shape}, "
                f"targets={np.atleast_1d(self.targets).tolist()})")
