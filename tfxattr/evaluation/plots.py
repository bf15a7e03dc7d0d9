"""PNG line plots with pillow only (no matplotlib): the curves of an evaluation report.

:func:`line_plot` draws series with axes, ticks, grid and a legend; :func:`nice_ticks` picks round ticks.
"""
from __future__ import annotations

import math
import os
from typing import List

import numpy as np

# matplotlib's "tab10" colours, then black and gold: twelve methods stay distinguishable
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (0, 0, 0), (255, 215, 0))
# pixels (width, height): readable in a Markdown report at its default width
PLOT_SIZE = (800, 440)
# plot margins (left, right, top, bottom): room for y tick labels, the legend, the title, x ticks + label
MARGINS = (64, 230, 34, 50)
# pillow's default font size, large enough to read at PLOT_SIZE
FONT_SIZE = 13
# grid lines light enough not to compete with the curves
GRID_GREY = (232, 232, 232)
# legend: pixels per entry (one text line) and characters shown before a label is cut
LEGEND_ROW = 18
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
    """Draw ``series`` = [(label, x, y), ...] as lines with axes, ticks, grid and a legend; save a PNG.

    Non-finite y values break a line. Returns ``path``.
    """
    from PIL import Image, ImageDraw, ImageFont

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
    try:
        font = ImageFont.load_default(size=FONT_SIZE)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    width, height = size
    left, right, top, bottom = MARGINS
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    x0, x1, y0, y1 = left, width - right, top, height - bottom

    def px(x, y):
        return (x0 + (x - xt[0]) / (xt[-1] - xt[0]) * (x1 - x0), y1 - (y - yt[0]) / (yt[-1] - yt[0]) * (y1 - y0))

    for t in xt:
        X = px(t, yt[0])[0]
        draw.line([(X, y0), (X, y1)], fill=GRID_GREY)
        draw.line([(X, y1), (X, y1 + 4)], fill="black")
        draw.text((X, y1 + 6), f"{t:g}", fill="black", font=font, anchor="ma")
    for t in yt:
        Y = px(xt[0], t)[1]
        draw.line([(x0, Y), (x1, Y)], fill=GRID_GREY)
        draw.line([(x0 - 4, Y), (x0, Y)], fill="black")
        draw.text((x0 - 6, Y), f"{t:g}", fill="black", font=font, anchor="rm")
    draw.rectangle([x0, y0, x1, y1], outline="black")
    for k, (lab, x, y) in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        segment = []
        for xv, yv in zip(x, y):
            if np.isfinite(yv):
                segment.append(px(xv, yv))
            else:
                _polyline(draw, segment, color)
                segment = []
        _polyline(draw, segment, color)
        ly = y0 + 8 + LEGEND_ROW * k
        draw.line([(x1 + 12, ly), (x1 + 36, ly)], fill=color, width=3)
        shown = lab if len(lab) <= LEGEND_CHARS else lab[:LEGEND_CHARS - 1] + "…"
        draw.text((x1 + 42, ly), shown, fill="black", font=font, anchor="lm")
    draw.text(((x0 + x1) / 2, 10), title, fill="black", font=font, anchor="ma")
    draw.text(((x0 + x1) / 2, height - 18), xlabel, fill="black", font=font, anchor="ma")
    draw.text((6, y0 - 22), ylabel, fill="black", font=font)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    img.save(path)
    return path


def _polyline(draw, points, color):
    if len(points) == 1:
        x, y = points[0]
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)
    elif len(points) > 1:
        draw.line(points, fill=color, width=2, joint="curve")
