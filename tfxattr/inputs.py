"""Turn what users pass (arrays, tensors, PIL images, file paths; ints; baseline names) into checked arrays."""
from __future__ import annotations

import contextlib
import os
from typing import Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from .blur import gaussian_blur
from .checks import did_you_mean

#: the top of the 8-bit pixel scale every image file is brought to
PIXEL_MAX = 255.0
#: PNG stores at most 16 bits per sample, so a PNG Pillow opens as 32-bit "I" holds 16-bit data
PNG_MAX_BITS = 16
#: Pillow's high-depth single-channel modes -> (bits per sample, signed)
HIGH_DEPTH_MODES = {"I;16": (16, False), "I;16L": (16, False), "I;16B": (16, False), "I;16N": (16, False),
                    "I;16S": (16, True), "I;32": (32, False), "I;32S": (32, True), "I": (32, True)}
#: TIFF tags: BitsPerSample and SampleFormat (1 = unsigned, 2 = signed, 3 = float)
TIFF_BITS_PER_SAMPLE, TIFF_SAMPLE_FORMAT, TIFF_SIGNED = 258, 339, 2
#: how many class names an error message lists before "..."
NAMES_SHOWN = 20
#: the scales images come in, smallest first: unit floats, symmetric floats ("tf" mode), 8-bit pixels
CONVENTIONAL_RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, PIXEL_MAX))
#: the top of the 16-bit pixel scale; 65535 / 257 = 255 exactly, so uint16 arrays come to 8-bit by / 257
PIXEL_MAX_16 = 65535.0
#: what transparent pixels are composited over (viewers and browsers show transparency on white)
BACKGROUNDS = {"white": PIXEL_MAX, "black": 0.0}
DEFAULT_BACKGROUND = "white"
#: values above FAR_ABOVE x an 8-bit-like range's top are not 8-bit pixels (16-bit ones: up to 257 x)
FAR_ABOVE = 2.0
#: images whose lowest value is below the range's low end by this share of the range, and whose mean lies within
#: MEAN_NEAR_ZERO of zero (shares of the range), look mean-subtracted (a 0..255 image has a mean near 110)
BELOW_LOW, MEAN_NEAR_ZERO = 0.05, 0.1


def load_images(images, input_shape=None, background: str = DEFAULT_BACKGROUND,
                pixel_range=None) -> Tuple[np.ndarray, bool]:
    """Return ``(float32 (N,H,W,C) pixel array, was_single_image)``.

    File paths and PIL images are resized to the model's fixed input size; arrays must already have it.
    Files are turned upright by their EXIF orientation (phone photos), and transparent pixels are
    composited over ``background`` ("white", as viewers show them, or "black"). uint16 arrays are 16-bit
    pixels and come to 0..255 (/ 257) as 16-bit files do, unless ``pixel_range`` is declared (then they are
    taken as they are, in that range).
    """
    one_of_backgrounds(background)
    single = False
    if isinstance(images, (str, os.PathLike)) or _is_pil(images):
        images, single = [images], True
    if isinstance(images, (list, tuple)) and images and all(_is_file_or_pil(i) for i in images):
        arr = np.stack([_read_image(i, input_shape, background) for i in images]).astype(np.float32)
        return _check_pixels(arr), single
    if isinstance(images, (list, tuple)):
        _check_list(images)
    try:
        arr = np.asarray(images.numpy() if hasattr(images, "numpy") else images)
    except Exception as err:  # noqa: BLE001 - anything that is not array-like
        raise TypeError("images must be an array, tf.Tensor, PIL image or file path(s); "
                        f"got {type(images).__name__}") from err
    if arr.dtype == bool:
        raise TypeError("images must be pixel values, got a bool array (a mask?); convert it, e.g. "
                        "mask.astype(np.float32) * 255")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"images must be real pixel values, got complex dtype {arr.dtype}")
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"images must be numeric, got dtype {arr.dtype}")
    if arr.dtype == np.uint16 and pixel_range is None:  # 16-bit pixels, brought to 8-bit as 16-bit files are
        arr = arr.astype(np.float64) * (PIXEL_MAX / PIXEL_MAX_16)
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


def read_range(images) -> Optional[Tuple[float, float]]:
    """(0, 255) when :func:`load_images` reads ``images`` from files or PIL images, or gets uint16 arrays
    (it brings every depth to 8-bit pixels), else None: the range of other arrays and tensors is the
    caller's to say."""
    if isinstance(images, (str, os.PathLike)) or _is_pil(images):
        return (0.0, PIXEL_MAX)
    if _is_uint16(images):
        return (0.0, PIXEL_MAX)
    if isinstance(images, (list, tuple)) and images and all(_is_file_or_pil(i) for i in images):
        return (0.0, PIXEL_MAX)
    return None


def image_range(images) -> Optional[Tuple[float, float]]:
    """The range ``images`` are in, decided from their values: the smallest of :data:`CONVENTIONAL_RANGES`
    holding every value, else (min(0, lowest), highest) (e.g. mean-subtracted tensors); None for constant
    images (one value says nothing about the scale)."""
    vmin, vmax = float(np.min(images)), float(np.max(images))
    if vmin == vmax:
        return None
    for lo, hi in CONVENTIONAL_RANGES:
        if vmin >= lo and vmax <= hi:
            return (lo, hi)
    return (min(0.0, vmin), vmax)


def scale_hint(images, pixel_range) -> Optional[Tuple[str, str]]:
    """``(what the values show, what to pass)`` when ``images`` cannot be in the 8-bit-like ``pixel_range``
    because they are 16-bit pixels (values far above its top) or mean-subtracted (well below its low end,
    with a mean near zero); None otherwise. :meth:`~tfxattr.models.ModelAdapter.check_pixels` warns with it."""
    lo, hi = (float(v) for v in pixel_range)
    span = hi - lo
    vmin, vmax, mean = float(np.min(images)), float(np.max(images)), float(np.mean(images))
    if span <= 1.0 or vmin == vmax:
        return None
    if vmax > lo + FAR_ABOVE * span:
        top = PIXEL_MAX_16 if vmax <= PIXEL_MAX_16 else vmax
        return (f"values go up to {vmax:g}, far above {hi:g} (16-bit pixels?)",
                f"pass pixel_range=(0, {top:g}) if they are 16-bit pixels, or divide them by 257")
    if lo >= 0 and vmin < lo - BELOW_LOW * span and abs(mean) < MEAN_NEAR_ZERO * span:
        return (f"values lie in [{vmin:g}, {vmax:g}] with mean {mean:.3g} (mean-subtracted?)",
                "pass the images before normalisation (the model's input_range does the rest), or, if the model "
                f"itself reads mean-subtracted images, pass pixel_range=({vmin:g}, {vmax:g}) with the matching "
                "input_range")
    return None


def one_of_backgrounds(background):
    """``background`` is a name of :data:`BACKGROUNDS`; else ValueError with the valid names."""
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {', '.join(map(repr, BACKGROUNDS))} (what transparent pixels "
                         f"are composited over), got {background!r}{did_you_mean(background, BACKGROUNDS)}")


def _check_list(items):
    """A list that is not all files / PIL images: refuse a mix of both, or arrays of different shapes,
    naming the items that differ."""
    kinds = ["a file path" if isinstance(i, (str, os.PathLike)) else "a PIL image" if _is_pil(i) else "an array"
             for i in items]
    if "an array" in kinds and len(set(kinds)) > 1:
        first = next(k for k, kind in enumerate(kinds) if kind != "an array")
        arr = kinds.index("an array")
        raise ValueError(f"images mixes file paths / PIL images and arrays: images[{first}] is {kinds[first]}, "
                         f"images[{arr}] an array; give all file paths (or PIL images), or all arrays")
    shapes = [np.shape(i.numpy() if hasattr(i, "numpy") else i) for i in items]
    for k, shape in enumerate(shapes):
        if shape != shapes[0]:
            raise ValueError(f"images[{k}] has shape {shape}, images[0] {shapes[0]}: arrays in a list must have one "
                             "shape (resize them, or pass file paths / PIL images, which are resized for you)")


def _check_pixels(arr):
    if not np.all(np.isfinite(arr)):
        raise ValueError("images contain non-finite pixels (NaN or inf)")
    return arr


def _is_uint16(images) -> bool:
    """Whether ``images`` is a uint16 numpy array or tensor (16-bit pixels)."""
    dtype = getattr(images, "dtype", None)
    try:
        return dtype is not None and np.dtype(getattr(dtype, "as_numpy_dtype", dtype)) == np.uint16
    except TypeError:  # another library's dtype
        return False


def _is_file_or_pil(obj) -> bool:
    return isinstance(obj, (str, os.PathLike)) or _is_pil(obj)


def _is_pil(obj) -> bool:
    return type(obj).__module__.startswith("PIL.")


def _read_image(item, input_shape, background=DEFAULT_BACKGROUND):
    channels = input_shape[2] if input_shape is not None else 3
    size = None
    if input_shape is not None and input_shape[0] is not None and input_shape[1] is not None:
        size = (input_shape[0], input_shape[1])
    if _is_pil(item):
        return _fitted(item, channels, size, "images", background)
    if os.path.isdir(item):
        raise ValueError(f"images: {os.fspath(item)!r} is a directory, not an image file; give its image files "
                         "(e.g. DIR/*.jpg), or score a folder of images with `tfxattr eval --data DIR`")
    if not os.path.isfile(item):
        raise ValueError(f"images: no such file {os.fspath(item)!r}")
    with open_image(item) as img:
        return _fitted(img, channels, size, os.fspath(item), background)


def _fitted(img, channels, size, name, background=DEFAULT_BACKGROUND) -> np.ndarray:
    """float32 (H, W, channels) pixels of ``img``, resized (bilinear) to ``size`` = (H, W) if given."""
    from PIL import Image

    if size is None or img.size == (size[1], size[0]):
        return image_array(img, channels, name, background)
    if img.mode not in HIGH_DEPTH_MODES and img.mode != "F":  # 8-bit: resized as 8-bit, as before
        img = _flattened(img, background)
        return image_array(img.convert("L" if channels == 1 else "RGB").resize((size[1], size[0]), Image.BILINEAR),
                           channels, name)
    arr = image_array(img, channels, name)  # high depth: resized in float, no 8-bit rounding first
    planes = [Image.fromarray(np.ascontiguousarray(arr[..., c]), "F") for c in range(arr.shape[-1])]
    return np.stack([np.asarray(p.resize((size[1], size[0]), Image.BILINEAR)) for p in planes], axis=-1)


@contextlib.contextmanager
def open_image(path):
    """The decoded PIL image of the file ``path``; a truncated or non-image file raises ValueError naming it."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = os.fspath(path)
    try:
        img = Image.open(name)
        img.load()  # decode now: a truncated file fails here, with its name
        ImageOps.exif_transpose(img, in_place=True)  # phone photos: stored sideways, EXIF says how to turn them
    except UnidentifiedImageError:
        raise ValueError(f"{name}: not an image file (or a format Pillow cannot read)") from None
    except Exception as err:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, EOFError, zlib.error, ...
        raise ValueError(f"{name}: cannot read the image ({type(err).__name__}: {err})") from None
    try:
        yield img
    finally:
        img.close()


def read_image_file(path, channels: int = 3, background: str = DEFAULT_BACKGROUND) -> np.ndarray:
    """float32 (H, W, ``channels``) pixels in [0, 255] of the image file ``path`` (any bit depth; upright by
    its EXIF orientation; transparent pixels over ``background``)."""
    with open_image(path) as img:
        return image_array(img, channels, os.fspath(path), background)


def image_array(img, channels: int, name: str = "image", background: str = DEFAULT_BACKGROUND) -> np.ndarray:
    """float32 (H, W, ``channels``) pixels in [0, 255] of a PIL image of any depth.

    8-bit modes are converted as they are, transparent pixels composited over ``background``; 16- and
    32-bit integer images are scaled by their sample range (65535 -> 255); float images ("F", e.g.
    float TIFF) must hold values in [0, 1].
    """
    if img.mode not in HIGH_DEPTH_MODES and img.mode != "F":
        img = _flattened(img, background)
        arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.float32)
        return arr[..., None] if arr.ndim == 2 else arr
    raw = np.asarray(img)
    if img.mode == "F":
        raw = raw.astype(np.float64)
        if not np.all(np.isfinite(raw)):
            raise ValueError(f"{name}: the float image has non-finite pixels (NaN or inf)")
        if raw.size and (raw.min() < 0 or raw.max() > 1):
            raise ValueError(f"{name}: a float image must hold values in [0, 1], got [{raw.min():g}, {raw.max():g}]")
        gray = raw * PIXEL_MAX
    else:
        bits, signed = _sample_depth(img)
        if raw.size and raw.min() < 0:
            raise ValueError(f"{name}: a {bits}-bit integer image has negative pixels ({raw.min()})")
        gray = raw.astype(np.float64) * (PIXEL_MAX / (2 ** (bits - signed) - 1))
    gray = gray.astype(np.float32)[..., None]
    return gray if channels == 1 else np.repeat(gray, channels, axis=-1)


def _flattened(img, background):
    """``img`` without transparency: an image with an alpha channel (or a palette transparency) composited
    over the ``background`` colour (:data:`BACKGROUNDS`); others unchanged."""
    from PIL import Image

    if img.mode not in ("RGBA", "LA", "PA", "RGBa", "La") and "transparency" not in img.info:
        return img
    rgba = img.convert("RGBA")
    level = int(BACKGROUNDS[background])
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (level, level, level, 255)), rgba).convert("RGB")


def _sample_depth(img) -> Tuple[int, bool]:
    """(bits per sample, signed) of a high-depth integer PIL image, from the file when it says."""
    bits, signed = HIGH_DEPTH_MODES[img.mode]
    if img.format == "PNG":
        return min(bits, PNG_MAX_BITS), False
    tags = getattr(img, "tag_v2", None)
    if tags is not None and TIFF_BITS_PER_SAMPLE in tags:
        per_sample = tags[TIFF_BITS_PER_SAMPLE]
        bits = int(per_sample[0] if isinstance(per_sample, tuple) else per_sample)
        fmt = tags.get(TIFF_SAMPLE_FORMAT, 1)
        signed = int(fmt[0] if isinstance(fmt, tuple) else fmt) == TIFF_SIGNED
    return bits, signed


def class_index(name: str, class_names: Optional[Sequence[str]], what: str = "targets") -> int:
    """The index of class ``name`` in ``class_names`` (exact, else ignoring case, "_" and "-");
    an unknown name raises ValueError naming ``what`` with the closest names."""
    if not class_names:
        raise ValueError(f"{what} {name!r} is a class name, but the model has no class names: give a class index")
    names = [str(c) for c in class_names]
    if name in names:
        return names.index(name)
    loose = [i for i, c in enumerate(names) if _loose(c) == _loose(name)]
    if len(loose) == 1:
        return loose[0]
    shown = ", ".join(names[:NAMES_SHOWN]) + (", ..." if len(names) > NAMES_SHOWN else "")
    raise ValueError(f"{what}: unknown class name {name!r}{did_you_mean(name, names)}; the model's classes: {shown}")


def _loose(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def resolve_targets(targets, n: int, num_classes: int, predict=None, class_names=None) -> np.ndarray:
    """``None`` -> top-1 class of each image (``predict()`` gives the scores); int -> same for all;
    sequence -> one each. A class name (or a sequence mixing names and ints) is looked up in
    ``class_names`` (the model's)."""
    if targets is None:
        if predict is None:
            raise ValueError("targets=None needs the model's predictions")
        return np.argmax(np.asarray(predict()), axis=-1).astype(np.int32)
    if isinstance(targets, str):
        targets = class_index(targets, class_names)
    elif isinstance(targets, (list, tuple)) and any(isinstance(t, str) for t in targets):
        targets = [class_index(t, class_names) if isinstance(t, str) else t for t in targets]
    if isinstance(targets, (bool, np.bool_)):
        raise TypeError(f"targets must be an int, a class name, a sequence of them or None, got {targets!r}")
    arr = np.asarray(targets.numpy() if hasattr(targets, "numpy") else targets)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"targets must be an int, a class name, a sequence of them or None, got dtype {arr.dtype}")
    if arr.ndim == 0:
        arr = np.full((n,), int(arr))
    if arr.shape != (n,):
        raise ValueError(f"targets must be one int or {n} ints (one per image), got shape {arr.shape}")
    if np.any(arr < 0) or np.any(arr >= num_classes):
        raise ValueError(f"targets out of range: the model has {num_classes} classes, got {arr.tolist()}")
    return arr.astype(np.int32)


def resolve_baseline(baseline, images, pixel_range, blur_sigma: float = 20.0):
    """``"black"`` / ``"white"`` (the pixel range's ends), ``"blur"``, a number, or an array -> (N,H,W,C).

    One implementation for every door: eager (numpy ``images``) it returns a numpy array; traced inside
    a ``tf.function`` (an exported method) it returns a tensor, and a per-image (N,H,W,C) array is
    refused there (a served model takes any number of images)."""
    lo, hi = pixel_range
    eager = tf.executing_eagerly()
    x = tf.convert_to_tensor(images, tf.float32)
    if baseline is None or isinstance(baseline, str):
        name = "black" if baseline is None else baseline.lower()
        if name in ("black", "zero", "zeros"):
            out = tf.fill(tf.shape(x), tf.constant(lo, tf.float32))
        elif name == "white":
            out = tf.fill(tf.shape(x), tf.constant(hi, tf.float32))
        elif name == "blur":
            out = gaussian_blur(x, blur_sigma)
        else:
            raise ValueError(f"baseline must be 'black', 'white', 'blur', a number or an array, got {baseline!r}")
        return out.numpy() if eager else out
    arr = np.asarray(baseline.numpy() if hasattr(baseline, "numpy") else baseline, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError("baseline contains non-finite values")
    shape = tuple(x.shape)
    if arr.ndim == 0:
        out = tf.fill(tf.shape(x), tf.constant(float(arr), tf.float32))
    elif arr.shape == shape[1:]:
        out = tf.zeros_like(x) + tf.constant(arr)
    elif eager and arr.shape == shape:
        out = tf.constant(arr)
    elif not eager and arr.ndim == 4:
        raise NotExportable(f"a baseline of shape {arr.shape} holds one image per input; a served model takes "
                            "any number of images, so give one (H, W, C) baseline or a name")
    else:
        raise ValueError(f"baseline shape {arr.shape} does not match the images: expected {shape[1:]} "
                         f"or {shape}")
    return out.numpy() if eager else out


class NotExportable(ValueError):
    """A method (or an option of it) that has no graph form: raised at export time, naming the method and why."""
