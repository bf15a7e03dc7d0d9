"""Grid data sets (Rao H.1): grids of cells the classifier gets right with high confidence."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ...checks import one_of, positive_int
from ...models import as_model
from .layout import tile_cells
from .settings import SETTINGS, GridSetting

# Rao H.1: a cell image is used only if the classifier gets it right with softmax probability >= 0.99
CONFIDENCE = 0.99


@dataclass
class GridDataset:
    """Grid images and the (grid, cell, class) triples to evaluate.

    ``images`` (G, n*h, n*w, C); ``labels``/``sources`` (G, n*n): class and source-image index per cell;
    ``grid``/``cells``/``classes`` (E,): one evaluated attribution each.
    """
    setting: str
    n: int
    images: np.ndarray
    labels: np.ndarray
    sources: np.ndarray
    grid: np.ndarray
    cells: np.ndarray
    classes: np.ndarray
    threshold: float = CONFIDENCE
    eligible: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self):
        return len(self.grid)

    def targets(self, setting: GridSetting) -> np.ndarray:
        """One output index per evaluated entry, for ``setting.model``."""
        return np.asarray(setting.target(self.cells, self.classes), np.int32)

    def eval_images(self) -> np.ndarray:
        """(E, n*h, n*w, C): the grid image of each evaluated entry."""
        return self.images[self.grid]


def confident_indices(model, images, labels, threshold: float = CONFIDENCE, batch_size: int = 32,
                      preprocess=None) -> np.ndarray:
    """Indices of images the classifier gets right with softmax probability >= ``threshold``."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")
    labels = np.asarray(labels).astype(np.int64)
    adapter = as_model(model, batch_size=batch_size, preprocess=preprocess)
    probs = adapter.probabilities(np.asarray(images, np.float32))
    rows = np.arange(len(labels))
    ok = (probs.argmax(1) == labels) & (probs[rows, labels] >= threshold)
    return np.flatnonzero(ok)


def make_grid_dataset(model, images, labels, setting: str = "gridpg", n: int = 2, num_grids: Optional[int] = None,
                      threshold: float = CONFIDENCE, seed: int = 0, batch_size: int = 32,
                      preprocess=None) -> GridDataset:
    """Grids of cells the classifier ``model`` gets right with confidence >= ``threshold`` (Rao H.1).

    GridPG: ``n*n`` distinct classes per grid, every cell evaluated. DiFull/DiPart: the same class at the
    top-left and bottom-right cells (different images), the other cells from other classes; only the two
    corners are evaluated. Images are drawn without reuse until a class runs out (then reshuffled); no
    image repeats within a grid. ``num_grids`` default: about one use per eligible image.
    """
    one_of(setting, "setting", SETTINGS)
    smallest = 1 if setting == "gridpg" else 2  # DiFull/DiPart need two distinct corner cells
    n = positive_int(n, "n")
    if n < smallest:
        raise ValueError(f"n must be an integer >= {smallest} for {setting!r}, got {n!r}")
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int64)
    if images.ndim != 4 or len(images) != len(labels):
        raise ValueError(f"images must be (N, H, W, C) with one label each, got {images.shape} and {labels.shape}")
    eligible = confident_indices(model, images, labels, threshold, batch_size, preprocess)
    pools = _ClassPools(eligible, labels[eligible], np.random.default_rng(seed))
    cells = n * n
    num_grids = max(1, len(eligible) // cells) if num_grids is None else positive_int(num_grids, "num_grids")
    sources = np.stack([pools.gridpg(cells) if setting == "gridpg" else pools.corners(cells)
                        for _ in range(num_grids)])
    grids = tile_cells(images[sources])
    eval_cells = np.arange(cells) if setting == "gridpg" else np.array([0, cells - 1])
    grid_idx = np.repeat(np.arange(num_grids), len(eval_cells))
    cell_idx = np.tile(eval_cells, num_grids)
    cell_labels = labels[sources]
    return GridDataset(setting, n, grids, cell_labels, sources, grid_idx, cell_idx,
                       cell_labels[grid_idx, cell_idx], threshold, eligible)


class _ClassPools:
    """Per-class queues of eligible image indices, drawn without reuse until a queue runs dry."""

    def __init__(self, indices, classes, rng):
        self.rng = rng
        self.members = {int(c): indices[classes == c] for c in np.unique(classes)}
        self.queues = {c: [] for c in self.members}

    def draw(self, cls, exclude=()):
        for _attempt in ("queue", "reshuffled queue"):  # the queue as it is, then refilled once
            queue = [i for i in self.queues[cls] if i not in exclude]
            if queue:
                self.queues[cls].remove(queue[0])
                return queue[0]
            self.queues[cls] = list(self.rng.permutation(self.members[cls]))
        raise ValueError(f"class {cls} has too few confident images for one grid")

    def _draw_any(self, classes, exclude):
        for cls in classes:
            try:
                return self.draw(int(cls), exclude)
            except ValueError:
                continue
        raise ValueError("too few confident images to fill a grid without repeating one")

    def gridpg(self, cells):
        classes = sorted(self.members)
        if len(classes) < cells:
            raise ValueError(f"GridPG needs {cells} distinct classes with confident images, found {len(classes)} "
                             "(lower threshold or use a smaller n)")
        return np.array([self.draw(int(c)) for c in self.rng.choice(classes, cells, replace=False)])

    def corners(self, cells):
        pairs = [c for c, m in self.members.items() if len(m) >= 2]
        others = sorted(self.members)
        if not pairs or len(others) < 2:
            raise ValueError("DiFull/DiPart need a class with two confident images and a second class "
                             "(lower threshold or pass more images)")
        cls = int(self.rng.choice(pairs))
        first = self.draw(cls)
        out = [first] + [None] * (cells - 2) + [self.draw(cls, exclude=(first,))]
        rest = list(self.rng.permutation([c for c in others if c != cls]))
        for i in range(1, cells - 1):
            order = rest[i % len(rest):] + rest[:i % len(rest)]
            out[i] = self._draw_any(order, tuple(x for x in out if x is not None))
        return np.array(out)
