"""Deterministic synthetic "shapes" data set with exact object masks.

Every image holds exactly one object (a disc, square, triangle, cross or ring)
at a random position, scale, colour and rotation, drawn crisply (no
anti-aliasing) over a cluttered background made of smooth random colour
gradients, a few thin random lines and pixel noise.  The background, the
object's colour, size and position are drawn independently of the label, so
the class is determined only by the object's *shape*; ``masks`` marks exactly
the object's pixels (a ring's hole is background), which makes the set
suitable for scoring how much attribution falls on the object.

Pure NumPy; the same ``seed`` always gives identical arrays.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["CLASS_NAMES", "make_shapes"]

#: Class names, indexed by label.
CLASS_NAMES = ("disc", "square", "triangle", "cross", "ring")

# Object area as a fraction of the image area (drawn uniformly per image).
_AREA_RANGE = (0.08, 0.28)
# Minimum distance (in pixels) between the object's bounding box and the border.
_MARGIN = 1.0
# Minimum RGB distance between the object colour and the mean background under it.
_MIN_CONTRAST = 100.0


def _check_int(name, value, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _rotate(points, theta):
    """Rotate an (m, 2) array of (x, y) offsets by ``theta`` radians."""
    c, s = np.cos(theta), np.sin(theta)
    return points @ np.array([[c, s], [-s, c]])


def _convex_mask(verts, xx, yy):
    """Pixels whose centres lie inside (or on) the convex polygon ``verts``."""
    x0, y0 = verts[:, 0], verts[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    # Signed area fixes the orientation so that "inside" means cross >= 0.
    orient = np.sign(np.sum(x0 * y1 - x1 * y0))
    inside = np.ones(xx.shape, dtype=bool)
    for a, b, c, d in zip(x0, y0, x1, y1):
        inside &= orient * ((c - a) * (yy - b) - (d - b) * (xx - a)) >= -1e-9
    return inside


def _shape_geometry(label, area, rng):
    """Return (polygons, radii, extent points) of a shape centred at the origin.

    ``polygons`` is a list of convex vertex arrays whose union is the shape,
    ``radii`` is ``(outer, inner)`` for discs/rings (else ``None``), and the
    extent points bound the shape (used to place it inside the image).
    """
    name = CLASS_NAMES[label]
    if name == "disc":
        r = np.sqrt(area / np.pi)
        return [], (r, 0.0), np.array([[-r, -r], [r, r]])
    if name == "ring":
        rho = rng.uniform(0.45, 0.65)
        r = np.sqrt(area / (np.pi * (1.0 - rho**2)))
        return [], (r, rho * r), np.array([[-r, -r], [r, r]])
    if name == "square":
        h = np.sqrt(area) / 2.0
        sq = np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
        polys = [_rotate(sq, rng.uniform(0.0, np.pi / 2))]
    elif name == "triangle":
        r = np.sqrt(area / (3.0 * np.sqrt(3.0) / 4.0))  # circumradius
        ang = rng.uniform(0.0, 2.0 * np.pi / 3) + np.array([0.0, 2.0, 4.0]) * np.pi / 3
        polys = [np.stack([r * np.cos(ang), r * np.sin(ang)], axis=1)]
    elif name == "cross":
        k = rng.uniform(0.28, 0.42)  # arm thickness / arm length
        length = np.sqrt(area / (2.0 * k - k**2))
        a, t = length / 2.0, k * length / 2.0
        theta = rng.uniform(0.0, np.pi / 2)
        bar = np.array([[-a, -t], [a, -t], [a, t], [-a, t]])
        polys = [_rotate(bar, theta), _rotate(bar[:, ::-1], theta)]
    else:  # pragma: no cover - CLASS_NAMES and this function must agree
        raise AssertionError(name)
    return polys, None, np.concatenate(polys)


def _smooth_field(rng, size, grid, amplitude):
    """Low-frequency random RGB field: a coarse random grid, bilinearly upsampled."""
    coarse = rng.normal(0.0, amplitude, size=(grid, grid, 3))
    pos = (np.arange(size) + 0.5) / size * (grid - 1)
    lo = np.minimum(pos.astype(int), grid - 2)
    frac = pos - lo
    w = np.zeros((size, grid))
    w[np.arange(size), lo] = 1.0 - frac
    w[np.arange(size), lo + 1] = frac
    rows = np.tensordot(w, coarse, axes=(1, 0))  # (size, grid, 3)
    return np.tensordot(rows, w, axes=(1, 1)).transpose(0, 2, 1)


def _background(rng, size, xx, yy):
    """Class-neutral clutter: colour gradient + smooth blotches + thin lines."""
    c0, c1 = rng.uniform(0, 255, size=(2, 3))
    phi = rng.uniform(0, 2 * np.pi)
    t = np.clip(((xx - size / 2) * np.cos(phi) + (yy - size / 2) * np.sin(phi)) / size + 0.5, 0, 1)
    img = c0 * (1.0 - t[..., None]) + c1 * t[..., None]
    img += _smooth_field(rng, size, grid=int(rng.integers(3, 7)), amplitude=rng.uniform(15, 40))
    for _ in range(int(rng.integers(0, 5))):
        p, q = rng.uniform(0, size, size=(2, 2))
        d = q - p
        u = np.clip(((xx - p[0]) * d[0] + (yy - p[1]) * d[1]) / max(d @ d, 1e-9), 0, 1)
        dist2 = (xx - p[0] - u * d[0]) ** 2 + (yy - p[1] - u * d[1]) ** 2
        img[dist2 <= 0.25] = rng.uniform(0, 255, size=3)
    return img


def _draw_one(label, size, rng, xx, yy):
    """Render one image (float RGB) and its boolean object mask."""
    img = _background(rng, size, xx, yy)

    area = rng.uniform(*_AREA_RANGE) * size * size
    polys, radii, ext = _shape_geometry(label, area, rng)
    lo, hi = ext.min(axis=0), ext.max(axis=0)
    span = (hi - lo).max()
    room = size - 2 * _MARGIN - 1e-6
    if span > room:  # never happens for the default area range, but be safe
        scale = room / span
        polys = [p * scale for p in polys]
        radii = None if radii is None else (radii[0] * scale, radii[1] * scale)
        lo, hi = lo * scale, hi * scale
    cx = rng.uniform(_MARGIN - lo[0], size - _MARGIN - hi[0])
    cy = rng.uniform(_MARGIN - lo[1], size - _MARGIN - hi[1])

    if radii is not None:
        r2 = (xx - cx) ** 2 + (yy - cy) ** 2
        mask = (r2 <= radii[0] ** 2) & (r2 >= radii[1] ** 2)
    else:
        mask = np.zeros((size, size), dtype=bool)
        for p in polys:
            mask |= _convex_mask(p + [cx, cy], xx, yy)

    # Object colour: random, but clearly distinct from the background under it.
    bg_mean = img[mask].mean(axis=0)
    best, best_dist = None, -1.0
    for _ in range(30):
        colour = rng.uniform(0, 255, size=3)
        dist = np.linalg.norm(colour - bg_mean)
        if dist > best_dist:
            best, best_dist = colour, dist
        if dist >= _MIN_CONTRAST:
            break
    # A gentle linear shading so objects are not perfectly flat.
    psi = rng.uniform(0, 2 * np.pi)
    shade = ((xx - cx) * np.cos(psi) + (yy - cy) * np.sin(psi)) / size * rng.uniform(0, 30)
    img[mask] = best + shade[mask][:, None]

    img += rng.normal(0.0, rng.uniform(3.0, 12.0), size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), mask


def make_shapes(n, size=64, seed=0):
    """Generate ``n`` labelled ``size`` x ``size`` RGB images with object masks.

    Returns a dict with ``images`` (uint8, ``(n, size, size, 3)``), ``labels``
    (int64, ``(n,)``, indices into :data:`CLASS_NAMES`, as balanced as ``n``
    allows, in random order) and ``masks`` (bool, ``(n, size, size)``, True
    exactly on the object's pixels).  Deterministic in ``seed``.
    """
    n = _check_int("n", n, 1)
    size = _check_int("size", size, 16)
    seed = _check_int("seed", seed, 0)

    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(CLASS_NAMES)).astype(np.int64)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5  # pixel centres
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    masks = np.empty((n, size, size), dtype=bool)
    for i, label in enumerate(labels):
        images[i], masks[i] = _draw_one(int(label), size, rng, xx, yy)
    return {"images": images, "labels": labels, "masks": masks}
