"""The images SIC/AIC scores (Kapishnikov et al., XRAI, ICCV 2019): each image quantised to 8 bits, its
baseline (PAIR's interpolation from a few random pixels, or IDGI's PIL blur) and its *bokeh* images, the
most salient pixels revealed over the baseline, one per threshold (:func:`bokeh_images`).

PAIR's ``create_blurred_image`` is :func:`interpolate_unknown`: the same triangulation, with the unknown
pixels located and interpolated exactly in integer arithmetic (``tfxattr.metrics.pic``'s docstring says why).
"""
from __future__ import annotations

import contextlib
import warnings

import numpy as np


def to_uint8(images, pixel_range) -> np.ndarray:
    """Pixels in ``pixel_range`` -> uint8 [0, 255] (rounded)."""
    lo, hi = pixel_range
    return np.clip(np.round((np.asarray(images, np.float64) - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def from_uint8(images, pixel_range) -> np.ndarray:
    lo, hi = pixel_range
    x = np.asarray(images, np.float32)
    return x if (lo, hi) == (0.0, 255.0) else (lo + x * ((hi - lo) / 255.0)).astype(np.float32)


def random_masks(random_mask, shape, fraction, seed) -> np.ndarray:
    """bool (N,H,W) seed pixels: the given mask(s), or ``int(H*W*fraction)`` random pixels per image."""
    n, h, w = shape
    if random_mask is None:
        rng = np.random.default_rng(seed)
        out = np.zeros((n, h * w), bool)
        for row in out:
            row[rng.choice(h * w, size=int(h * w * fraction), replace=False)] = True
        return out.reshape(n, h, w)
    arr = np.asarray(random_mask)
    if arr.shape == (h, w):
        arr = np.broadcast_to(arr, (n, h, w))
    if arr.shape != (n, h, w) or not (arr.dtype == bool or np.all(np.isin(arr, (0, 1)))):
        raise ValueError(f"random_mask must be bool (H, W) = {(h, w)} or (N, H, W) = {(n, h, w)}, "
                         f"got {arr.dtype} {arr.shape}")
    return arr.astype(bool)


def bokeh_images(img, saliency, thresholds, baseline, seeds, index, blur_sigma) -> np.ndarray:
    """uint8 (T+1, H, W, C): the baseline image ("interpolate": PAIR's, from ``seeds[index]``; "blur": PIL's
    Gaussian blur of ``blur_sigma``), then the image with each threshold's pixels revealed over it."""
    if baseline == "blur":
        blurred = pil_blur(img, blur_sigma)
        revealed = [saliency >= np.quantile(saliency, 1 - t) for t in thresholds]
        return np.stack([blurred] + [np.where(m[..., None], img, blurred) for m in revealed])
    seed = seeds[index]
    masks = [seed] + [(saliency >= np.quantile(saliency, 1 - t)) | seed for t in thresholds]
    return np.stack([interpolate_unknown(img, m) for m in masks])


#: scipy's default options for a 2-D Delaunay triangulation (what PAIR's ``griddata`` runs), plus "Q5":
#: skip qhull's final check of the outer planes, which only bounds the facets' distances for output
#: (~9% of qhull's time) and changes no facet.
QHULL_OPTIONS = "Qbb Qc Qz Q12 Q5"


def interpolate_unknown(img, known) -> np.ndarray:
    """PAIR's ``create_blurred_image``: linear interpolation of the unknown pixels from the known ones
    (corners always known, mean colour outside the hull), with one triangulation for all channels.

    The triangulation is PAIR's (qhull on the same points in the same order). Each unknown pixel is found
    in a triangle by exact integer tests, and its value is ``sum(n_i v_i) / det`` with the integer
    barycentric numerators ``n_i``: the correctly rounded value, which PAIR's floating-point barycentric
    coordinates reach after its float32 cast and rounding to 8 bits (tested equal).
    """
    from scipy.spatial import Delaunay

    known = known.copy()
    h, w = known.shape
    known[[0, 0, h - 1, h - 1], [0, w - 1, 0, w - 1]] = True
    if known.all():
        return img
    points = np.argwhere(known)
    simplices = Delaunay(points.astype(np.float64), qhull_options=QHULL_OPTIONS).simplices
    pixels, corners, weights, det = _containing_triangles(points[simplices], known)
    values = img[corners[..., 0], corners[..., 1]].astype(np.int64)  # (U, 3, C)
    out = img * known[..., None].astype(np.float32)
    out[~known] = np.mean(img, axis=(0, 1))  # pixels in no triangle (none while the corners are known)
    out.reshape(h * w, -1)[pixels] = np.einsum("uk,ukc->uc", weights, values) / det[:, None]
    return np.round(out).astype(img.dtype)


def _containing_triangles(triangles, known):
    """For the unknown pixels inside ``triangles`` (M, 3, 2) integer (row, col) vertices: flat pixel
    indices (U,), their triangle's vertices (U, 3, 2), integer barycentric numerators (U, 3) and the
    triangles' doubled signed areas (U,). A pixel on an edge shared by two triangles takes the first
    (both give the same value: the interpolation along an edge depends only on its ends)."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    det = _cross(b - a, c - a)
    low = triangles.min(1)
    extent = triangles.max(1) - low + 1
    count = np.where(det != 0, extent[:, 0] * extent[:, 1], 0)  # degenerate (flat) triangles hold no pixel
    tri = np.repeat(np.arange(len(triangles)), count)
    k = np.arange(len(tri)) - (np.cumsum(count) - count)[tri]
    p = np.stack([low[tri, 0] + k // extent[tri, 1], low[tri, 1] + k % extent[tri, 1]], -1)
    unknown = ~known[p[:, 0], p[:, 1]]
    tri, p = tri[unknown], p[unknown]
    d = det[tri]
    nb = _cross(p - a[tri], c[tri] - a[tri])
    nc = _cross(b[tri] - a[tri], p - a[tri])
    weights = np.stack([d - nb - nc, nb, nc], -1)
    inside = np.all(weights * np.sign(d)[:, None] >= 0, axis=1)
    flat = p[inside, 0] * known.shape[1] + p[inside, 1]
    pixels, first = np.unique(flat, return_index=True)
    rows = np.flatnonzero(inside)[first]
    return pixels, triangles[tri[rows]], weights[rows], d[rows].astype(np.float64)


def _cross(u, v):
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def pil_blur(img, sigma) -> np.ndarray:
    """PIL ``GaussianBlur(radius=sigma)`` of a uint8 (H,W,C) image (IDGI's baseline image). PIL's ``radius``
    is the Gaussian's standard deviation in pixels (PIL approximates the Gaussian by extended box filters),
    so ``sigma`` is the blur width every other ``blur_sigma`` of tfxattr means."""
    from PIL import Image, ImageFilter

    out = np.asarray(Image.fromarray(pil_array(img)).filter(ImageFilter.GaussianBlur(radius=sigma)))
    return out.reshape(img.shape)


@contextlib.contextmanager
def _one_blas_thread():
    """Pin BLAS to one thread, for PAIR's interpolation (tests, benchmarks): scipy's barycentric transforms
    make one tiny LAPACK call per triangle, and OpenBLAS waking its threads for each makes them 8-10x
    slower (far more on a busy machine)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        warnings.warn("threadpoolctl is not installed, so PAIR's interpolation runs scipy's per-triangle LAPACK "
                      "calls on all OpenBLAS threads (8-10x slower, worse on a busy machine): pip install "
                      "threadpoolctl", RuntimeWarning, stacklevel=4)
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def pil_array(img):
    """A uint8 (H,W,C) image as PIL takes it: one channel as (H,W)."""
    return img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img
