"""The result of ``explain``: attributions, their channel-reduced maps, and ways to look at them."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import visualize


@dataclass
class Explanation:
    """``attribution``: float32 (N,H,W,C), or (H,W,C) when one image was explained.

    ``method``: the registered name of the method; ``options``: every option of that method;
    ``run``: how it was run (output, batch_size, seed, model), which does not change the method.
    ``map``: the (N,)H,W map metrics use (``reduce`` over channels, default sum of |a|).
    """
    attribution: np.ndarray
    targets: np.ndarray
    method: str
    options: dict = field(default_factory=dict)
    run: dict = field(default_factory=dict)
    images: Optional[np.ndarray] = None
    pixel_range: tuple = (0.0, 255.0)
    class_names: Optional[list] = None
    reduce: str = "sum_abs"

    @property
    def single(self) -> bool:
        return self.attribution.ndim == 3

    @property
    def map(self) -> np.ndarray:
        return visualize.reduce_channels(self.attribution, self.reduce)

    def _batched(self):
        a = self.attribution[None] if self.single else self.attribution
        imgs = None if self.images is None else (self.images[None] if self.images.ndim == 3 else self.images)
        t = np.atleast_1d(self.targets)
        return a, imgs, t

    def overlay(self, index: int = 0, alpha: float = 0.5) -> np.ndarray:
        """uint8 (H,W,3): the heatmap of image ``index`` over the image."""
        a, imgs, _ = self._batched()
        if imgs is None:
            raise ValueError("this Explanation holds no images to overlay")
        heat = visualize.reduce_channels(a[index], self.reduce)
        return visualize.overlay(imgs[index], heat, alpha=alpha, pixel_range=self.pixel_range)

    def save(self, path: str, index: Optional[int] = None, scale: Optional[int] = None) -> list:
        """Write PNG panels (image | heatmap | overlay). Several images: ``path`` gets ``_<i>`` suffixes."""
        from PIL import Image

        a, imgs, t = self._batched()
        if imgs is None:
            raise ValueError("this Explanation holds no images to save")
        indices = range(len(a)) if index is None else [index]
        root, ext = os.path.splitext(path)
        ext = ext or ".png"
        written = []
        for i in indices:
            heat = visualize.reduce_channels(a[i], self.reduce)
            s = scale or max(1, 256 // max(heat.shape))
            out = visualize.panel(imgs[i], heat, pixel_range=self.pixel_range, scale=s)
            target = f"{root}{'' if len(indices) == 1 else f'_{i}'}{ext}"
            os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
            Image.fromarray(out).save(target)
            written.append(target)
        return written

    def label(self, index: int = 0) -> str:
        t = int(np.atleast_1d(self.targets)[index])
        return self.class_names[t] if self.class_names and t < len(self.class_names) else str(t)

    def __repr__(self):
        return (f"Explanation(method={self.method!r}, attribution={self.attribution.shape}, "
                f"targets={np.atleast_1d(self.targets).tolist()})")
