"""Turn what users pass (arrays, tensors, PIL images, file paths; ints; baseline names) into checked arrays."""
from __future__ import annotations

import os
from typing import Tuple

import numpy as np

from .blur import gaussian_blur


def load_images(images, input_shape=None) -> Tuple[np.ndarray, bool]:
    """Return ``(float32 (N,H,W,C) pixel array, was_single_image)``.

    File paths and PIL images are resized to the model's fixed input size; arrays must already have it.
    """
    single = False
    if isinstance(images, (str, os.PathLike)) or _is_pil(images):
        images, single = [images], True
    if isinstance(images, (list, tuple)) and images and all(_is_file_or_pil(i) for i in images):
        arr = np.stack([_read_image(i, input_shape) for i in images]).astype(np.float32)
        return _check_pixels(arr), single
    try:
        arr = np.asarray(images.numpy() if hasattr(images, "numpy") else images)
    except Exception as err:  # noqa: BLE001 - anything that is not array-like
        raise TypeError("images must be an array, tf.Tensor, PIL image or file path(s); "
                        f"got {type(images).__name__}") from err
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"images must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 3:
        arr, single = arr[None], True
    if arr.ndim != 4:
        raise ValueError(f"images must have shape (H, W, C) or (N, H, W, C), got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("images is empty")
    arr = arr.astype(np.float32)
    if input_shape is not None:
        exp = tuple(input_shape)
        got = arr.shape[1:]
        if exp[2] is not None and got[2] != exp[2]:
            raise ValueError(f"images must have {exp[2]} channels for this model, got shape {arr.shape}")
        if any(e is not None and e != g for e, g in zip(exp[:2], got[:2])):
            raise ValueError(f"images must be {exp[0]}x{exp[1]} for this model, got {got[0]}x{got[1]} "
                             "(resize them, or pass file paths / PIL images, which are resized for you)")
    return _check_pixels(arr), single


def _check_pixels(arr):
    if not np.all(np.isfinite(arr)):
        raise ValueError("images contain non-finite pixels (NaN or inf)")
    return arr


def _is_file_or_pil(obj) -> bool:
    return isinstance(obj, (str, os.PathLike)) or _is_pil(obj)


def _is_pil(obj) -> bool:
    return type(obj).__module__.startswith("PIL.")


def _read_image(item, input_shape):
    from PIL import Image

    if _is_pil(item):
        img = item
    else:
        if not os.path.isfile(item):
            raise ValueError(f"images: no such file {os.fspath(item)!r}")
        img = Image.open(item)
    channels = input_shape[2] if input_shape is not None else 3
    img = img.convert("L" if channels == 1 else "RGB")
    if input_shape is not None and input_shape[0] is not None and input_shape[1] is not None:
        if img.size != (input_shape[1], input_shape[0]):
            img = img.resize((input_shape[1], input_shape[0]), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.float32)
    return arr[..., None] if arr.ndim == 2 else arr


def resolve_targets(target, n: int, num_classes: int, predict=None) -> np.ndarray:
    """``None`` -> top-1 class of each image (``predict()`` gives the scores); int -> same for all;
    sequence -> one each."""
    if target is None:
        if predict is None:
            raise ValueError("target=None needs the model's predictions")
        return np.argmax(np.asarray(predict()), axis=-1).astype(np.int32)
    if isinstance(target, (bool, np.bool_)):
        raise TypeError(f"target must be an int, a sequence of ints or None, got {target!r}")
    arr = np.asarray(target.numpy() if hasattr(target, "numpy") else target)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"target must be an int, a sequence of ints or None, got dtype {arr.dtype}")
    if arr.ndim == 0:
        arr = np.full((n,), int(arr))
    if arr.shape != (n,):
        raise ValueError(f"target must be one int or {n} ints (one per image), got shape {arr.shape}")
    if np.any(arr < 0) or np.any(arr >= num_classes):
        raise ValueError(f"target out of range: the model has {num_classes} classes, got {arr.tolist()}")
    return arr.astype(np.int32)


def resolve_baseline(baseline, images: np.ndarray, pixel_range, blur_sigma: float = 20.0) -> np.ndarray:
    """``"black"`` / ``"white"`` (the pixel range's ends), ``"blur"``, a number, or an array -> (N,H,W,C)."""
    lo, hi = pixel_range
    if baseline is None or isinstance(baseline, str):
        name = "black" if baseline is None else baseline.lower()
        if name in ("black", "zero", "zeros"):
            return np.full_like(images, lo)
        if name == "white":
            return np.full_like(images, hi)
        if name == "blur":
            return gaussian_blur(images, blur_sigma).numpy()
        raise ValueError(f"baseline must be 'black', 'white', 'blur', a number or an array, got {baseline!r}")
    arr = np.asarray(baseline.numpy() if hasattr(baseline, "numpy") else baseline, dtype=np.float32)
    if arr.ndim == 0:
        out = np.full_like(images, float(arr))
    elif arr.shape == images.shape[1:]:
        out = np.broadcast_to(arr, images.shape).copy()
    elif arr.shape == images.shape:
        out = arr.copy()
    else:
        raise ValueError(f"baseline shape {arr.shape} does not match the images: expected {images.shape[1:]} "
                         f"or {images.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError("baseline contains non-finite values")
    return out
