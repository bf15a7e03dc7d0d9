"""Heatmaps people can look at: channel reduction, percentile scaling, a colormap, an overlay, and the
labelled matplotlib figure (image | heatmap | overlay, a title and a colour bar) that ``Explanation`` saves.

Figures are plain ``matplotlib.figure.Figure`` objects drawn by the non-interactive Agg canvas: no
display and no pyplot state are ever needed.
"""
from __future__ import annotations

import os
import textwrap
from typing import Optional

import numpy as np

from .reduction import NAMED_REDUCTIONS, REDUCTION_LABELS, reduce_channels, reduction_label  # noqa: F401

# the channel reduction lives in one module (tfxattr.reduction); its names are re-exported here
REDUCTIONS = NAMED_REDUCTIONS
# perceptually uniform and still ordered from dark to bright when printed in grey
CMAP = "inferno"
# the heatmap's colours saturate at this percentile of the map, so a few extreme pixels do not darken the rest
PERCENTILE = 99.0
# how strongly the heatmap covers the image in the overlay (at the map's top value)
OVERLAY_ALPHA = 0.5
# matplotlib's default resolution: a figure of W x H inches is 100 W x 100 H pixels
DPI = 100
# inches of each panel's height: a 224-pixel image shows at about its own size at DPI
PANEL_INCHES = 3.2
# inches added to the width for the colour bar and its tick labels, to the height for the two title lines
COLORBAR_INCHES = 1.3
TITLE_INCHES = 0.8
# characters per title line before it wraps (the title spans the three panels)
TITLE_CHARS = 100
# significant digits of the scores in a title: enough to tell 0.93 from 0.95, short enough to read
DIGITS = 3


def color_range(heatmap: np.ndarray, percentile: float = PERCENTILE) -> tuple:
    """(low, high) map values shown as the darkest and the brightest colour: low is min(0, min of the
    map), high is low plus the ``percentile`` of the shifted map (its max when that is 0)."""
    h = np.asarray(heatmap, np.float32)
    low = min(0.0, float(h.min())) if h.size else 0.0
    top = float(np.percentile(h - low, percentile)) if h.size else 0.0
    if top <= 0:
        top = float((h - low).max()) if h.size else 0.0
    return low, low + (top or 1.0)


def normalize(heatmap: np.ndarray, percentile: float = PERCENTILE) -> np.ndarray:
    """Scale an (H, W) map to [0, 1] over :func:`color_range` (clipping at ``percentile``)."""
    low, high = color_range(heatmap, percentile)
    return np.clip((np.asarray(heatmap, np.float32) - low) / (high - low), 0.0, 1.0)


def colorize(values01: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to uint8 RGB with :data:`CMAP` (the colours of the figures' colour bars)."""
    from matplotlib import colormaps

    rgba = colormaps[CMAP](np.clip(np.asarray(values01, np.float64), 0, 1))
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def to_uint8_image(image: np.ndarray, pixel_range=(0.0, 255.0)) -> np.ndarray:
    img = np.asarray(image, np.float32)
    lo, hi = pixel_range
    img = (img - lo) / max(hi - lo, 1e-12) * 255.0
    img = np.clip(img, 0, 255).astype(np.uint8)
    return np.repeat(img, 3, -1) if img.shape[-1] == 1 else img[..., :3]


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = OVERLAY_ALPHA, pixel_range=(0.0, 255.0),
            percentile: float = PERCENTILE) -> np.ndarray:
    """Blend the coloured heatmap over the (dimmed) image; uint8 (H, W, 3)."""
    base = to_uint8_image(image, pixel_range).astype(np.float32)
    h = normalize(heatmap, percentile)
    color = colorize(h).astype(np.float32)
    weight = alpha * h[..., None] ** 0.5
    return (base * (1 - weight) + color * weight).clip(0, 255).astype(np.uint8)


# -- titles ---------------------------------------------------------------------------------------
def changed_options(options: dict, defaults: dict) -> dict:
    """The entries of ``options`` that are not equal to ``defaults`` (or not in it); arrays compare by value."""
    missing = object()
    return {k: v for k, v in options.items() if not _same(v, defaults.get(k, missing))}


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except (ValueError, TypeError):  # arrays: == is elementwise
        return isinstance(a, np.ndarray) == isinstance(b, np.ndarray) and np.array_equal(a, b)


def format_value(value) -> str:
    """An option value as a spec writes it (``steps=20``, ``layers=(a,b)``); a Method as its spec label."""
    if hasattr(value, "changed") and hasattr(value, "name"):  # a Method given as an option (smooth's base)
        return f"({method_label(value.name, value.changed)})"
    if isinstance(value, np.ndarray):
        return f"array{tuple(value.shape)}"
    if isinstance(value, (list, tuple)):
        return "(" + ",".join(format_value(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    return str(value)


def method_label(name: str, changed: dict) -> str:
    """``ig+idgi:baseline=blur,steps=20``: the registered name and the options that differ from its
    defaults, in the ``name:key=value`` syntax of ``tfxattr eval`` and ``tfxattr explain --method``."""
    if not changed:
        return str(name)
    return f"{name}:" + ",".join(f"{k}={format_value(v)}" for k, v in sorted(changed.items()))


def score_line(label: str, target: int, score=None, probability=None, output: str = "logit") -> str:
    """``class cat (281): logit 9.12, probability 0.874`` — the explained class, the explained score
    (a logit or a probability, per ``output``) and the class probability; absent values are left out."""
    who = f"class {label}" if str(label) == str(target) else f"class {label} ({target})"
    parts = []
    if score is not None and output != "probability":
        parts.append(f"{output} {float(score):.{DIGITS}g}")
    if probability is not None:
        parts.append(f"probability {format_probability(probability)}")
    elif score is not None and output == "probability":
        parts.append(f"probability {format_probability(score)}")
    return who + (": " + ", ".join(parts) if parts else "")


def format_probability(p) -> str:
    """``p`` to :data:`DIGITS` significant digits, but ``>0.999`` rather than a rounded ``1`` for p < 1."""
    text = f"{float(p):.{DIGITS}g}"
    return f">{1 - 10 ** -DIGITS:.{DIGITS}f}" if text == "1" and float(p) < 1 else text


def figure_title(method: str, changed: dict, label: str, target: int, score=None, probability=None,
                 output: str = "logit") -> str:
    """The two lines above an explanation's panels: the method with its changed options, then
    :func:`score_line` (each wrapped at :data:`TITLE_CHARS`)."""
    lines = [method_label(method, changed), score_line(label, target, score, probability, output)]
    return "\n".join(textwrap.fill(line, TITLE_CHARS) for line in lines)


# -- figures --------------------------------------------------------------------------------------
def new_figure(width: float, height: float, dpi: int = DPI, layout: Optional[str] = "constrained"):
    """A matplotlib Figure of ``width`` x ``height`` inches on the non-interactive Agg canvas (``layout``:
    matplotlib's layout engine; None when the caller places the axes itself)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def explanation_figure(image, heatmap, title: str = "", pixel_range=(0.0, 255.0), reduce: str = "auto",
                       percentile: float = PERCENTILE, dpi: int = DPI, channels=None):
    """Image | heatmap | overlay panels under ``title``, with a colour bar of the map's values.

    The heatmap's colours span :func:`color_range` (values above it are clipped, which the bar's
    arrow shows); the overlay blends the same colours over the image. Axes are labelled "image",
    "heatmap", "overlay" and "colorbar" (``Axes.get_label()``). ``reduce`` and ``channels`` (the
    attribution's channel count, when known) name the channel reduction on the bar
    (:func:`tfxattr.reduction.reduction_label`).
    """
    heat = np.asarray(heatmap, np.float32)
    rows, cols = heat.shape
    panel_width = PANEL_INCHES * cols / rows
    fig = new_figure(3 * panel_width + COLORBAR_INCHES, PANEL_INCHES + TITLE_INCHES, dpi)
    axes = fig.subplots(1, 3)
    low, high = color_range(heat, percentile)
    pictures = {"image": to_uint8_image(image, pixel_range),
                "overlay": overlay(image, heat, pixel_range=pixel_range, percentile=percentile)}
    for ax, name in zip(axes, ("image", "heatmap", "overlay")):
        if name == "heatmap":
            shown = ax.imshow(heat, cmap=CMAP, vmin=low, vmax=high)
        else:
            ax.imshow(pictures[name])
        ax.set_title(name)
        ax.set_label(name)
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(shown, ax=list(axes), extend="max" if float(heat.max()) > high else "neither")
    bar.ax.set_label("colorbar")
    bar.set_label(f"attribution ({reduction_label(reduce, channels)})")
    if title:
        fig.suptitle(title)
    return fig


#: figure file suffixes -> the format written (RGB, no alpha channel)
FIGURE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
#: JPEG quality of figures (heatmaps show blocking artefacts below about 90)
JPEG_QUALITY = 95


def figure_format(path, argument: str = "path") -> str:
    """The format a figure at ``path`` is written in, from its suffix (:data:`FIGURE_FORMATS`); another suffix
    raises ValueError naming ``argument`` and the valid suffixes."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in FIGURE_FORMATS:
        raise ValueError(f"{argument}: cannot write a figure as {ext or 'a file without a suffix'!r} "
                         f"({os.fspath(path)!r}); give a file ending in {', '.join(FIGURE_FORMATS)}")
    return FIGURE_FORMATS[ext]


def figure_rgb(fig) -> np.ndarray:
    """Draw ``fig`` with Agg: its pixels as uint8 (H, W, 3) RGB (no alpha channel)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[..., :3])


def save_png(fig, path) -> str:
    """Render ``fig`` with Agg and write an RGB PNG (no alpha channel) at ``path`` (a JPEG when it ends in
    .jpg or .jpeg, :func:`figure_format`); return the path."""
    from PIL import Image

    fmt = figure_format(path)
    rgb = figure_rgb(fig)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(rgb).save(path, format=fmt, **({"quality": JPEG_QUALITY} if fmt == "JPEG" else {}))
    return str(path)
