"""Rao's localization score (supplement Eq. 2): the share of a map's positive mass inside its cell; the
metrics-registry view (:func:`grid_localization`) and a one-call evaluation on a grid data set."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ...checks import one_of, positive_int
from ...explanation import Explanation
from ...reduction import CHANNEL_REDUCTIONS, reduce_channels
from ..result import MetricResult
from .data import GridDataset
from .maps import layer_maps, upsample
from .settings import GridSetting

# "no positive mass" cut, relative to the map's total |mass| (Rao's code cuts at an absolute 1e-7)
EPS = 1e-7


def cell_masses(maps, n: int) -> np.ndarray:
    """(E, n*n) positive attribution per cell (row-major) of (E, H, W) maps, H and W divisible by n."""
    n = positive_int(n, "n")
    maps = np.asarray(maps, np.float64)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (E, H, W), got shape {maps.shape}")
    e, hh, ww = maps.shape
    if hh % n or ww % n:
        raise ValueError(f"map size {hh}x{ww} is not divisible by n={n}; upsample to the grid size first")
    pos = np.clip(maps, 0.0, None).reshape(e, n, hh // n, n, ww // n)
    return pos.sum(axis=(2, 4)).reshape(e, n * n)


def localization_scores(maps, cells, n: int, size=None, eps: float = EPS):
    """``(L, inside)``: Rao's Eq. 2 score of each map for its cell, and the positive mass inside the cell.

    ``size``: upsample the maps bilinearly to it (the grid image size) first. ``L = 0`` when the total
    positive mass is ~0: at most ``eps`` times the map's total absolute mass (Rao's code cuts at an absolute
    1e-7, which would zero whole models whose pixel gradients are ~1e-16). The total is the sum of the
    per-cell masses, so a map with no positive mass outside its cell scores exactly 1.0.
    """
    maps = np.asarray(maps)
    if size is not None:
        maps = upsample(maps, size)
    cells = np.broadcast_to(np.asarray(cells, np.int64), (len(maps),))
    if np.any(cells < 0) or np.any(cells >= n * n):
        raise ValueError(f"cells must lie in [0, {n * n}), got {np.unique(cells).tolist()}")
    masses = cell_masses(maps, n)
    inside = masses[np.arange(len(maps)), cells]
    total = masses.sum(1)
    usable = total > eps * np.abs(np.asarray(maps, np.float64)).sum(axis=(1, 2))
    scores = np.where(usable & (total > 0), inside / np.where(total > 0, total, 1.0), 0.0)
    return scores, inside


def grid_localization(model, images, maps, targets=None, masks=None, batch_size=32, *, cells=None, n: int = 2,
                      reduce: str = "sum", eps: float = EPS):
    """Rao et al. grid localization score (Eq. 2) of maps explaining one cell each; score "localization".

    ``images``: the grid images (only their size is used: maps are upsampled bilinearly to it; None keeps
    the maps' size). ``maps``: (N,h,w), (N,h,w,C) attributions (channels reduced by ``reduce``, one of
    :data:`tfxattr.reduction.CHANNEL_REDUCTIONS`; default "sum", Rao's signed sum) or an Explanation.
    ``cells`` (required): the cell each map explains.
    ``model``, ``targets`` and ``masks`` are not used. Higher is better; chance is ``1/n^2``.
    """
    if cells is None:
        raise ValueError("cells is required: the grid cell (row-major, 0 = top-left) each map explains")
    one_of(reduce, "reduce", CHANNEL_REDUCTIONS)
    if isinstance(maps, Explanation):
        images = maps.images if images is None else images
        maps = maps.attribution[None] if maps.single else maps.attribution
    arr = np.asarray(maps.numpy() if hasattr(maps, "numpy") else maps, np.float64)
    if arr.ndim == 4:
        arr = reduce_channels(arr, reduce).astype(np.float64)
    if arr.ndim != 3 or not np.all(np.isfinite(arr)):
        raise ValueError(f"maps must be finite (N, H, W) or (N, H, W, C) arrays, got shape {np.shape(maps)}")
    size = None if images is None else np.shape(images)[1:3]
    scores, inside = localization_scores(arr, cells, n, size=size, eps=eps)
    return MetricResult("grid_localization", {"localization": scores}, {"localization": True}, aggregation="median",
                        options={"n": n, "reduce": reduce, "eps": eps},
                        extras={"inside": inside, "cells": np.broadcast_to(cells, scores.shape).copy(),
                                "chance": 1.0 / (n * n)})


def evaluate_localization(setting: GridSetting, dataset: GridDataset, method: str = "ig", layer: Optional[str] = None,
                          smooth_kernel: Optional[int] = None, smooth_sigma: Optional[float] = None,
                          reduce: str = "rao", batch_size: int = 32, seed=None, keep_maps: bool = False, **options):
    """Localization scores of ``method`` on every evaluated (grid, cell) of ``dataset`` in ``setting``.

    A MetricResult ("localization" per entry; ``extras``: inside mass, cells, chance, and the maps when
    ``keep_maps`` — what :func:`aggatt` needs).
    """
    if dataset.n != setting.n or dataset.images.shape[1:] != setting.grid_shape:
        raise ValueError(f"dataset grids {dataset.images.shape[1:]} (n={dataset.n}) do not fit the setting's "
                         f"{setting.grid_shape} (n={setting.n})")
    if dataset.setting != "gridpg" and setting.name == "gridpg":
        raise ValueError("a DiFull/DiPart data set repeats a class within a grid; GridPG needs distinct classes")
    maps = layer_maps(setting, dataset.eval_images(), dataset.targets(setting), method, layer=layer, reduce=reduce,
                      smooth_kernel=smooth_kernel, smooth_sigma=smooth_sigma, batch_size=batch_size, seed=seed,
                      **options)
    result = grid_localization(None, None, maps, cells=dataset.cells, n=setting.n)
    result.targets = dataset.targets(setting)
    result.options = {"setting": setting.name, "method": method, "layer": layer, "smooth_kernel": smooth_kernel,
                      "smooth_sigma": smooth_sigma, **options}
    if keep_maps:
        result.extras["maps"] = maps
    return result
