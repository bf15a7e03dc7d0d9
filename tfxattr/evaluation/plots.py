"""PNG line plots with matplotlib: the curves of an evaluation report.

:func:`line_plot` draws series with axes, ticks, grid and a legend per method; :func:`nice_ticks` picks
the round ticks (and so the axis limits) of both axes.
"""
from __future__ import annotations

import math
from typing import List

import numpy as np

from ..visualize import new_figure, save_png

# matplotlib's "tab10" colours, then black and gold: twelve methods stay distinguishable
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (0, 0, 0), (255, 215, 0))
# pixels (width, height): readable in a Markdown report at its default width
PLOT_SIZE = (800, 440)
# dots per inch of the figure: PLOT_SIZE pixels are PLOT_SIZE / PLOT_DPI inches
PLOT_DPI = 100
# points: a label text size that stays readable at PLOT_SIZE
FONT_SIZE = 9
# points: line width of a curve, wide enough to show its colour next to eleven others
LINE_WIDTH = 2.0
# points: size of the dot drawn for a finite value with non-finite neighbours (a line of one point)
DOT_SIZE = 4.0
# draw such dots above the axes' spines (zorder 2.5), where a value at the axis limit sits
DOT_ZORDER = 3
# grid lines light enough not to compete with the curves
GRID_GREY = (232, 232, 232)
# legend: characters shown before a label is cut
LEGEND_CHARS = 26


def nice_ticks(lo: float, hi: float, count: int = 5) -> List[float]:
    """About ``count`` round tick values covering [lo, hi] (steps 1, 2, 2.5 or 5 times a power of ten)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"tick range must be finite, got [{lo}, {hi}]")
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(lo / step + 1e-9) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(t, 12))
    return ticks


def line_plot(series, path, title: str = "", xlabel: str = "", ylabel: str = "", size=PLOT_SIZE) -> str:
    """Draw ``series`` = [(label, x, y), ...] as lines with axes, ticks, grid and a legend; save an RGB PNG
    of ``size`` pixels.

    Non-finite y values break a line (a lone finite value is drawn as a dot). Returns ``path``.
    """
    series = [(str(lab), np.asarray(x, np.float64), np.asarray(y, np.float64)) for lab, x, y in series]
    if not series:
        raise ValueError("series is empty: pass [(label, x, y), ...]")
    for lab, x, y in series:
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError(f"series {lab!r}: x and y must be 1-D of the same length, got {x.shape} and {y.shape}")
    xs = np.concatenate([x for _, x, _ in series])
    ys = np.concatenate([y[np.isfinite(y)] for _, _, y in series] + [np.zeros(0)])
    xt = nice_ticks(float(xs.min()), float(xs.max()))
    yt = nice_ticks(float(ys.min()) if len(ys) else 0.0, float(ys.max()) if len(ys) else 1.0)

    fig = new_figure(size[0] / PLOT_DPI, size[1] / PLOT_DPI, PLOT_DPI)
    ax = fig.subplots()
    for k, (lab, x, y) in enumerate(series):
        color = tuple(c / 255 for c in PALETTE[k % len(PALETTE)])
        shown = lab if len(lab) <= LEGEND_CHARS else lab[:LEGEND_CHARS - 1] + "…"
        ax.plot(x, y, color=color, linewidth=LINE_WIDTH, label=shown, clip_on=False)  # limits are ticks
        lone = _lone_points(y)
        if lone.any():
            ax.plot(x[lone], y[lone], linestyle="none", marker="o", markersize=DOT_SIZE, color=color,
                    clip_on=False, zorder=DOT_ZORDER)
    ax.set_xticks(xt)
    ax.set_yticks(yt)
    ax.set_xlim(xt[0], xt[-1])
    ax.set_ylim(yt[0], yt[-1])
    ax.grid(True, color=tuple(c / 255 for c in GRID_GREY))
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=FONT_SIZE)
    ax.set_title(title, fontsize=FONT_SIZE + 1)
    ax.set_xlabel(xlabel, fontsize=FONT_SIZE)
    ax.set_ylabel(ylabel, fontsize=FONT_SIZE)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=FONT_SIZE, frameon=False)
    return save_png(fig, path)


def _lone_points(y: np.ndarray) -> np.ndarray:
    """Finite values whose neighbours are both non-finite (or absent): matplotlib draws no line there."""
    finite = np.isfinite(y)
    before = np.r_[False, finite[:-1]]
    after = np.r_[finite[1:], False]
    return finite & ~before & ~after
