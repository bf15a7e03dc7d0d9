"""Comparison figures: several methods on the same images in one figure, :func:`plot`.

Layout: the first row shows the images, then **one row per method** and one column per image. Rows are
methods because each row carries one colour bar in that method's own units: attributions of different
methods differ by orders of magnitude (IG sums gradient x pixel, Grad-CAM is a rectified weighted sum of
activations), so a bar can only be shared along a method; reading down a column compares the methods on
one image, reading along a row compares one method's maps on the same scale.

Colours: the maps are the one channel reduction's (:func:`tfxattr.reduction.reduce_channels`, as
``Explanation.map``). A row whose reduction keeps the sign and has negative values is drawn with a
diverging colormap centred at 0 (limits +-the :data:`~tfxattr.visualize.PERCENTILE` of |map|); any other
row with the sequential colormap of the single-explanation figures (:func:`tfxattr.visualize.color_range`).
Values beyond the limits are clipped, which the bar's arrows show.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from . import visualize
from .reduction import reduce_channels, reduction_label, resolve_reduction

#: signed maps: blue below 0, white at 0, red above (symmetric limits put 0 at the middle)
DIVERGING_CMAP = "RdBu_r"
#: unsigned maps: the single-explanation figures' colormap
SEQUENTIAL_CMAP = visualize.CMAP
#: the named reductions of :mod:`tfxattr.reduction` whose maps keep the sign (the others are >= 0)
SIGNED_REDUCTIONS = ("sum",)
#: inches of a panel's side: six images and a colour bar fit a 14-inch-wide page at DPI
GRID_PANEL_INCHES = 2.0
#: inches above each panel for its two label lines
PANEL_TITLE_INCHES = 0.45
#: inches around the grid and between panels (the layout is computed, not searched: constrained layout
#: took a second per figure)
MARGIN_INCHES = 0.1
#: inches right of a row: the gap before its colour bar, the bar, then the bar's ticks and label
BAR_GAP_INCHES, BAR_INCHES, BAR_LABEL_INCHES = 0.12, 0.12, 0.9
#: inches per line of the note below the grid that says how colours are scaled
NOTE_LINE_INCHES = 0.2
#: characters of PANEL_FONT text per inch of width (about 0.055 inch a character): where the note wraps
NOTE_CHARS_PER_INCH = 18
#: points: panel labels small enough that two lines fit above a panel
PANEL_FONT = 7
#: characters of a panel label line before it wraps (about a panel's width at PANEL_FONT)
PANEL_CHARS = 34


@dataclass
class MapRow:
    """One row of a map grid: ``maps`` (n, H, W) with one ``titles`` entry each, made by the named
    ``reduction`` (whether the maps may be signed); ``bar_label``: what the colour bar says they are."""
    maps: np.ndarray
    titles: List[str]
    reduction: str
    bar_label: str


def row_colors(maps: np.ndarray, reduction: str):
    """(colormap, low, high) of a row: diverging and centred at 0 when ``reduction`` keeps the sign and a
    value is negative, else sequential over :func:`tfxattr.visualize.color_range` of the whole row."""
    maps = np.asarray(maps, np.float32)
    if reduction in SIGNED_REDUCTIONS and maps.size and float(maps.min()) < 0:
        magnitude = np.abs(maps)
        high = float(np.percentile(magnitude, visualize.PERCENTILE)) or float(magnitude.max()) or 1.0
        return DIVERGING_CMAP, -high, high
    low, high = visualize.color_range(maps)
    return SEQUENTIAL_CMAP, low, high


def map_grid(images: np.ndarray, image_titles: Sequence[str], rows: Sequence[MapRow], pixel_range=(0.0, 255.0),
             dpi: int = visualize.DPI, note: Optional[str] = None):
    """A Figure: the images in a first row (labelled "image"), then each :class:`MapRow` (panels labelled
    "map", one colour bar per row labelled "colorbar"), and ``note`` (default: how colours are scaled)
    below. ``images``: (n, H, W, C) in ``pixel_range``; every row holds n maps."""
    n = len(images)
    height, width = np.asarray(images[0]).shape[:2]
    panel_w, panel_h, pad = GRID_PANEL_INCHES * width / height, GRID_PANEL_INCHES, MARGIN_INCHES
    grid_w = n * panel_w + (n - 1) * pad
    fig_w = pad + grid_w + BAR_GAP_INCHES + BAR_INCHES + BAR_LABEL_INCHES
    note = textwrap.fill(note or scale_note(), int(fig_w * NOTE_CHARS_PER_INCH))
    note_h = NOTE_LINE_INCHES * (note.count("\n") + 1) + pad
    fig_h = pad + (len(rows) + 1) * (PANEL_TITLE_INCHES + panel_h) + note_h
    fig = visualize.new_figure(fig_w, fig_h, dpi, layout=None)

    def box(left, row, w):  # the axes rectangle (figure fractions) of ``w`` inches at ``left`` in grid row ``row``
        bottom = fig_h - pad - (row + 1) * (PANEL_TITLE_INCHES + panel_h)
        return [left / fig_w, bottom / fig_h, w / fig_w, panel_h / fig_h]

    def panels(row):
        return [fig.add_axes(box(pad + j * (panel_w + pad), row, panel_w)) for j in range(n)]

    for ax, image, title in zip(panels(0), images, image_titles):
        ax.imshow(visualize.to_uint8_image(image, pixel_range))
        _label_panel(ax, "image", title)
    for r, row in enumerate(rows, 1):
        cmap, low, high = row_colors(row.maps, row.reduction)
        for ax, heat, title in zip(panels(r), row.maps, row.titles):
            shown = ax.imshow(heat, cmap=cmap, vmin=low, vmax=high)
            _label_panel(ax, "map", title)
        clipped = (float(np.min(row.maps)) < low, float(np.max(row.maps)) > high)
        bar = fig.colorbar(shown, cax=fig.add_axes(box(pad + grid_w + BAR_GAP_INCHES, r, BAR_INCHES)),
                           extend={(True, True): "both", (True, False): "min", (False, True): "max"}.get(clipped,
                                                                                                      "neither"))
        bar.ax.set_label("colorbar")
        bar.ax.tick_params(labelsize=PANEL_FONT)
        bar.set_label(textwrap.fill(row.bar_label, PANEL_CHARS // 2), fontsize=PANEL_FONT)
    fig.supxlabel(note, y=pad / fig_h, va="bottom", fontsize=PANEL_FONT)
    return fig


def scale_note() -> str:
    return (f"Colours: each row's own scale (its colour bar), clipped at the {visualize.PERCENTILE:g}th percentile; "
            "signed maps: blue < 0 (white) < red.")


def _label_panel(ax, kind: str, title: str):
    ax.set_label(kind)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("\n".join(textwrap.fill(line, PANEL_CHARS) for line in title.split("\n")), fontsize=PANEL_FONT)


# -- explanations -------------------------------------------------------------------------------------
def plot(explanations, path=None, image_names: Optional[Sequence[str]] = None,
         method_names: Optional[Sequence[str]] = None, dpi: int = visualize.DPI):
    """One figure of every Explanation (a method each) on their images: the images in the first row, then
    one row per method (module docstring), each panel labelled with the method, the class and the explained
    score. Returns the matplotlib Figure; ``path``: also written there (.png, .jpg or .jpeg, RGB).

    The explanations must hold the same images (as ``explain`` returns them). ``image_names``: one per image
    (default "image 1", ...); ``method_names``: one per explanation (default: the method and the options
    that differ from its registered defaults, as the single-explanation title writes it)."""
    from .explanation import Explanation

    if isinstance(explanations, Explanation):
        explanations = [explanations]
    explanations = list(explanations) if isinstance(explanations, (list, tuple)) else None
    if not explanations or not all(isinstance(e, Explanation) for e in explanations):
        raise TypeError("explanations must be an Explanation or a non-empty list of them (one per method)")
    if path is not None:
        visualize.figure_format(path, "path")  # a suffix it cannot write fails before anything is drawn
    images = _shared_images(explanations)
    image_names = _names(image_names, [f"image {i + 1}" for i in range(len(images))], "image_names")
    method_names = _names(method_names, [_method_label(e) for e in explanations], "method_names")
    rows = [_row(e, name) for e, name in zip(explanations, method_names)]
    fig = map_grid(images, image_names, rows, explanations[0].pixel_range, dpi)
    if path is not None:
        visualize.save_png(fig, path)
    return fig


def _shared_images(explanations) -> np.ndarray:
    """The (n, H, W, C) images every explanation holds; an explanation without them, or with others, is
    refused naming its position."""
    first = None
    for i, e in enumerate(explanations):
        if e.images is None:
            raise ValueError(f"explanations[{i}] ({e.method}) holds no images to plot")
        images = e.images[None] if e.images.ndim == 3 else e.images
        if first is None:
            first = images
        elif images.shape != first.shape or not np.array_equal(images, first):
            raise ValueError(f"explanations[{i}] ({e.method}) explains other images than explanations[0] "
                             f"(shapes {images.shape} and {first.shape}); a comparison needs the same images")
    return first


def _names(given, default: List[str], argument: str) -> List[str]:
    if given is None:
        return default
    given = [str(g) for g in given]
    if len(given) != len(default):
        raise ValueError(f"{argument}: {len(given)} names for {len(default)} {argument.split('_')[0]}s")
    return given


def _method_label(exp) -> str:
    """The method and its options that differ from the registered defaults (all of them when the name is
    not registered)."""
    from .methods.base import find_spec

    try:
        defaults = find_spec(exp.method).defaults
    except ValueError:
        defaults = {}
    return visualize.method_label(exp.method, visualize.changed_options(exp.options, defaults))


def _row(exp, method_name: str) -> MapRow:
    attribution = exp.attribution[None] if exp.single else exp.attribution
    targets = np.atleast_1d(exp.targets)
    titles = [f"{method_name}\n{_score_text(exp, i)}" for i in range(len(targets))]
    channels = attribution.shape[-1]
    return MapRow(reduce_channels(attribution, exp.reduce), titles, resolve_reduction(exp.reduce, channels),
                  reduction_label(exp.reduce, channels))


def _score_text(exp, index: int) -> str:
    """``triangle: logit 4.41, p 0.982`` — the class and the explained score (shorter than the
    single-explanation title's :func:`tfxattr.visualize.score_line`, to fit a panel)."""
    output = exp.run.get("output", "logit")
    parts = []
    if exp.scores is not None and output != "probability":
        parts.append(f"{output} {float(np.atleast_1d(exp.scores)[index]):.{visualize.DIGITS}g}")
    probability = exp.probabilities if exp.probabilities is not None else (
        exp.scores if output == "probability" else None)
    if probability is not None:
        parts.append(f"p {visualize.format_probability(np.atleast_1d(probability)[index])}")
    return exp.label(index) + (": " + ", ".join(parts) if parts else "")
