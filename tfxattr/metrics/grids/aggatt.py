"""Rao's AggAtt (Sec. 3.2, H.4): maps sorted by localization, averaged per percentile bin, one colour
scale per method; and the figure of it (one row per method)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ...visualize import colorize
from .maps import upsample
from .scores import localization_scores

# Rao's AggAtt bins: the best 2 %, 2-5 %, 5-50 %, 50-95 %, 95-98 % and the worst 2 % of the maps
AGGATT_EDGES = (0.0, 0.02, 0.05, 0.5, 0.95, 0.98, 1.0)
# Rao's code saturates the colour scale at the top 0.5 % of the bins' positive mass
CLIP_PERCENTILE = 0.5
# figure layout in pixels: method-name column, bin-label row, space between tiles, a label's offset in its box
LABEL_WIDTH, HEADER_HEIGHT, GAP, TEXT_X, TEXT_Y = 110, 18, 4, 4, 3
# characters of a method name that fit the label column; half a text line, to centre it on a tile
LABEL_CHARS, HALF_TEXT = 16, 6
# the box around the explained cell (a light blue that stands out on the heat map)
BOX_COLOUR = (60, 160, 255)


@dataclass
class AggAtt:
    """``bins`` (B, H, W) mean positive maps, best-localized first; ``counts`` (B,); ``scale``: the
    method's common colour scale; ``order``: entry indices sorted by score (ties: mass inside)."""
    bins: np.ndarray
    counts: np.ndarray
    edges: tuple
    scale: float
    order: np.ndarray
    scores: np.ndarray
    cell: int
    n: int


def aggatt(maps, cells, n: int, cell: int = 0, edges: Sequence[float] = AGGATT_EDGES,
           clip_percentile: float = CLIP_PERCENTILE, size=None) -> AggAtt:
    """Rao's AggAtt for the maps explaining cell ``cell``: sort, bin at ``edges``, average, one scale.

    ``scale``: the value below which ``100 - clip_percentile`` % of the bins' total positive mass lies
    (the cumulative-sum threshold of Rao's code), so the top ``clip_percentile`` % saturates.
    """
    edges = tuple(float(e) for e in edges)
    if len(edges) < 2 or edges[0] != 0.0 or edges[-1] != 1.0 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges must rise strictly from 0 to 1, got {edges}")
    maps = np.asarray(maps, np.float64)
    if size is not None:
        maps = upsample(maps, size).astype(np.float64)
    cells = np.broadcast_to(np.asarray(cells), (len(maps),))
    chosen = np.flatnonzero(cells == cell)
    scores, inside = localization_scores(maps[chosen], cell, n)
    order = chosen[np.lexsort((-inside, -scores))]
    bounds = [int(p * len(order)) for p in edges]
    counts = np.diff(bounds)
    if np.any(counts == 0):
        need = int(np.ceil(1.0 / min(np.diff(edges))))
        raise ValueError(f"{len(order)} maps for cell {cell} leave an AggAtt bin empty; need at least about {need}")
    pos = np.clip(maps[order], 0.0, None)
    bins = np.stack([pos[a:b].mean(0) for a, b in zip(bounds, bounds[1:])])
    sorted_scores = localization_scores(maps[order], cell, n)[0]
    return AggAtt(bins.astype(np.float32), counts, edges, _cumulative_threshold(bins, 100.0 - clip_percentile),
                  order, sorted_scores, int(cell), int(n))


def _cumulative_threshold(values, percentile):
    """The value below which ``percentile`` % of the total (positive) mass of ``values`` lies."""
    v = np.sort(np.asarray(values, np.float64).ravel())
    csum = np.cumsum(v)
    if csum[-1] <= 0:
        return 1.0
    idx = min(int(np.searchsorted(csum, csum[-1] * percentile / 100.0)), len(v) - 1)
    return float(v[idx]) or float(v[-1])


def aggatt_figure(results: dict, tile: int = 128) -> np.ndarray:
    """uint8 RGB figure: one row per method (``{name: AggAtt}``), one column per bin, target cell boxed."""
    if not results:
        raise ValueError("results is empty: pass {method name: AggAtt}")
    first = next(iter(results.values()))
    n_bins = len(first.bins)
    size = (LABEL_WIDTH + n_bins * (tile + GAP), HEADER_HEIGHT + len(results) * (tile + GAP))
    fig = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(fig)
    for j, (a, b) in enumerate(zip(first.edges, first.edges[1:])):
        draw.text((LABEL_WIDTH + j * (tile + GAP) + TEXT_X, TEXT_Y), f"{100 * a:g}-{100 * b:g}%", fill="black")
    for i, (name, res) in enumerate(results.items()):
        y = HEADER_HEIGHT + i * (tile + GAP)
        draw.text((TEXT_X, y + tile // 2 - HALF_TEXT), str(name)[:LABEL_CHARS], fill="black")
        for j, heat in enumerate(res.bins):
            img = Image.fromarray(colorize(np.clip(heat / res.scale, 0, 1))).resize((tile, tile), Image.BILINEAR)
            x = LABEL_WIDTH + j * (tile + GAP)
            fig.paste(img, (x, y))
            r, c = divmod(res.cell, res.n)
            s = tile / res.n
            draw.rectangle([x + c * s, y + r * s, x + (c + 1) * s - 1, y + (r + 1) * s - 1], outline=BOX_COLOUR)
    return np.asarray(fig)


def save_aggatt_png(results: dict, path: str, tile: int = 128) -> str:
    """Write :func:`aggatt_figure` to ``path`` (PNG, pillow) and return the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(aggatt_figure(results, tile)).save(path)
    return path
