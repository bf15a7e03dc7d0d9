"""Attribution maps for the grids at the input, a middle or the final layer (Rao Sec. 3.1.2), resized to
the grid and optionally smoothed (S-IntGrad, S-IxG)."""
from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

from ...checks import one_of, positive_float, positive_int
from ...reduction import CHANNEL_REDUCTIONS, reduce_channels
from .settings import GridSetting

#: Rao's per-method choice of channel reduction ("rao", the grids' default: RAO_REDUCE below), then the
#: shared ones (:data:`tfxattr.reduction.CHANNEL_REDUCTIONS`)
REDUCE = ("rao",) + CHANNEL_REDUCTIONS
# "rao": gradient-type maps (no input factor) as Rao / their papers show them; every other map summed with its
# sign (Rao's grid score counts positive mass: |a| would turn negative evidence into positive)
RAO_REDUCE = {"gradient": "sum_abs", "ggig": "abs_sum", "ggig_paper": "abs_sum"}
# the supplement gives the smoothing kernel size K but not its sigma: ours is K/4
SIGMA_PER_KERNEL = 0.25
# upper end of the "pixel range" of an activation that is all zeros: the range must not be empty
MIN_ACTIVATION_RANGE = 1e-6


def layer_maps(setting: GridSetting, images, targets, method: str = "ig", layer: Optional[str] = None,
               reduce: str = "rao", smooth_kernel: Optional[int] = None, smooth_sigma: Optional[float] = None,
               batch_size: int = 32, seed=None, **options) -> np.ndarray:
    """(E, H, W) maps of ``method`` for ``targets`` on ``setting``, at grid resolution (Rao Sec. 3.1.2).

    ``layer=None`` explains the input; a layer name explains the head ``activation -> scores`` with the
    activation as its "image" (any tfxattr method; the "black" baseline is the zero activation), sums
    over channels and upsamples bilinearly (near cell borders this spreads a little of a cell's map into
    its neighbours, as in Rao's code, so DiFull scores at coarse layers are close to, not exactly, 1).
    ``reduce``: a channel reduction of :func:`tfxattr.reduction.reduce_channels` ("sum": the signed channel
    sum, Rao; "auto": the package's default, ...) or "rao" (default): "sum_abs" for the plain gradient (Rao,
    via Captum's ``abs=True``), "abs_sum" for GGIG (its paper shows |channel sum|), "sum" otherwise (a
    single-channel map, e.g. Grad-CAM's, is then kept signed, as "auto" does). ``smooth_kernel``: Gaussian
    smoothing (S-IntGrad, S-IxG).
    """
    from ...explain import explain
    from ...models import as_model

    images = np.asarray(images, np.float32)
    if one_of(reduce, "reduce", REDUCE) == "rao":
        reduce = RAO_REDUCE.get(method, "sum") if not options.get("times_input", False) else "sum"
    features, head = setting.split(layer)
    if features is None:
        adapter = as_model(head, batch_size=batch_size, preprocess=setting.preprocess, pixel_range=setting.pixel_range)
        inputs = images
    else:
        x = setting.preprocess(images) if setting.preprocess is not None else images
        inputs = np.asarray(features.predict(x, batch_size=batch_size, verbose=0), np.float32)
        # "black" (the default baseline) is the zero activation, as Captum's default that Rao used
        hi = float(max(inputs.max(), MIN_ACTIVATION_RANGE))
        adapter = as_model(head, batch_size=batch_size, input_shape=inputs.shape[1:], pixel_range=(0.0, hi))
    attr = explain(adapter, inputs, method, targets=np.asarray(targets), batch_size=batch_size, seed=seed,
                   progress=False, **options).attribution
    attr = attr[None] if attr.ndim == 3 else attr
    maps = upsample(reduce_channels(attr, reduce), images.shape[1:3])
    if smooth_kernel is not None:
        maps = gaussian_smooth(maps, smooth_kernel, smooth_sigma)
    return maps


def upsample(maps, size) -> np.ndarray:
    """Bilinear resize of (E, h, w) maps to ``size`` (half-pixel centres, as PyTorch's align_corners=False)."""
    maps = np.asarray(maps, np.float32)
    if tuple(maps.shape[1:3]) == tuple(size):
        return maps
    return tf.image.resize(maps[..., None], tuple(size), method="bilinear").numpy()[..., 0]


def gaussian_kernel(kernel_size: int, sigma: Optional[float] = None) -> np.ndarray:
    """Normalised 1-D Gaussian of odd length ``kernel_size``; ``sigma`` default ``kernel_size / 4``."""
    kernel_size = positive_int(kernel_size, "kernel_size")
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
    sigma = positive_float(kernel_size * SIGMA_PER_KERNEL if sigma is None else sigma, "sigma")
    r = kernel_size // 2
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return k / k.sum()


def gaussian_smooth(maps, kernel_size: int, sigma: Optional[float] = None) -> np.ndarray:
    """Smooth (E, H, W) maps with a ``kernel_size`` Gaussian, zero padding ("same" size).

    Rao's S-IntGrad / S-IxG (supplement Sec. C, D, G: K = 9 .. 257 on 448x448 grids, K = 129 best). The
    supplement names K, not sigma: ``sigma`` defaults to K/4 (our choice). Mass is kept except what the
    kernel pushes over the image border.
    """
    maps = np.asarray(maps, np.float64)
    k = gaussian_kernel(kernel_size, sigma)
    r = len(k) // 2

    def band(size):
        d = np.arange(size)[None, :] - np.arange(size)[:, None]
        return np.where(np.abs(d) <= r, k[np.clip(d + r, 0, len(k) - 1)], 0.0)

    return (band(maps.shape[1]) @ maps @ band(maps.shape[2]).T).astype(np.float32)
