"""Rao, Böhle, Schiele (CVPR 2022): GridPG, DiFull and DiPart grids, the localization score, AggAtt.

An ``n x n`` grid image holds one classifier-sized cell per position, cells numbered row-major from the
top-left (0) to the bottom-right (``n*n - 1``).

* **GridPG** — the whole grid through the classifier (fully convolutional models with global pooling;
  ``resize=True`` squeezes the grid to the input size of a fixed-size model instead). Output (N, K);
  "class c at cell i" is target ``c`` (the cells hold distinct classes).
* **DiFull** — each cell through the whole classifier separately (the cells are stacked along the batch
  axis), one head per cell. Output (N, n*n*K) with index ``cell * K + class``: no cell can influence
  another cell's logits, so every gradient-based attribution outside the explained cell is exactly 0.
* **DiPart** — the whole grid through the trunk up to ``layer`` (``split_model``), the feature map cut
  into ``n x n`` cells, the rest of the classifier applied to each cell. Same output layout as DiFull.

Localization (supplement Eq. 2): ``L_i = sum_{p in cell i} A+(p) / sum_p A+(p)``, 0 when the total is
~0; chance is ``1/n^2``. Maps at a middle or final layer (Rao's layer-wise evaluation) explain the head
on the layer's activation, summed over channels and upsampled bilinearly to the grid. AggAtt (Sec. 3.2,
H.4): maps sorted by ``L_i`` (ties: positive mass inside the cell), mean positive map per percentile
bin, one colour scale per method. S-IntGrad / S-IxG: :func:`gaussian_smooth` (kernel size K as in the
supplement; its sigma is not given there, K/4 is our default).

Typical run: ``setting = build_setting(model, "difull")``, ``data = make_grid_dataset(model, images,
labels, "difull")``, ``result = evaluate_localization(setting, data, "ig", layer=None, keep_maps=True)``,
``aggatt(result.extras["maps"], data.cells, setting.n, cell=0)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from ..models.layers import find_layer, layer_graph, split_model, valid_split_layers
from ..visualize import reduce_channels

SETTINGS = ("gridpg", "difull", "dipart")
AGGATT_EDGES = (0.0, 0.02, 0.05, 0.5, 0.95, 0.98, 1.0)
REDUCE = ("sum", "sum_abs", "abs_sum")
# channel reductions of gradient-type maps (no input factor): everything else is summed with its sign
AUTO_REDUCE = {"gradient": "sum_abs", "ggig": "abs_sum", "ggig_paper": "abs_sum"}


# -- (cell, class) <-> output index ----------------------------------------------------------------
def grid_target(cell, cls, num_classes: int):
    """Output index of "class ``cls`` at cell ``cell``" in a DiFull/DiPart model: ``cell * K + cls``."""
    cell, cls = np.asarray(cell), np.asarray(cls)
    if np.any(cls < 0) or np.any(cls >= num_classes) or np.any(cell < 0):
        raise ValueError(f"cls must lie in [0, {num_classes}) and cell must be >= 0, got cell={cell}, cls={cls}")
    return cell * num_classes + cls


def cell_and_class(target, num_classes: int):
    """Inverse of :func:`grid_target`: ``(cell, class)`` of a DiFull/DiPart output index."""
    return np.divmod(np.asarray(target), num_classes)


# -- the Keras layers that cut a grid into cells and back -----------------------------------------
@keras.saving.register_keras_serializable(package="tfxattr")
class GridToCells(keras.layers.Layer):
    """(B, n*h, n*w, C) -> (B*n*n, h, w, C): cells stacked along the batch axis, row-major."""

    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        self.n = int(n)

    def call(self, x):
        n, (height, width, channels) = self.n, x.shape[1:]
        h, w = height // n, width // n
        x = ops.reshape(x, (-1, n, h, n, w, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, h, w, channels))

    def compute_output_shape(self, shape):
        return (None, shape[1] // self.n, shape[2] // self.n, shape[3])

    def get_config(self):
        return {**super().get_config(), "n": self.n}


@keras.saving.register_keras_serializable(package="tfxattr")
class CellsToGrid(keras.layers.Layer):
    """(B*n*n, h, w, C) -> (B, n*h, n*w, C): the inverse of :class:`GridToCells`."""

    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        self.n = int(n)

    def call(self, x):
        n, (h, w, channels) = self.n, x.shape[1:]
        x = ops.reshape(x, (-1, n, n, h, w, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, n * h, n * w, channels))

    def compute_output_shape(self, shape):
        return (None, shape[1] * self.n, shape[2] * self.n, shape[3])

    def get_config(self):
        return {**super().get_config(), "n": self.n}


@keras.saving.register_keras_serializable(package="tfxattr")
class CellLogits(keras.layers.Layer):
    """(B*n*n, K) per-cell logits -> (B, n*n*K), index ``cell * K + class``."""

    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        self.n = int(n)

    def call(self, x):
        return ops.reshape(x, (-1, self.n * self.n * x.shape[-1]))

    def compute_output_shape(self, shape):
        return (None, self.n * self.n * shape[-1])

    def get_config(self):
        return {**super().get_config(), "n": self.n}


# -- settings ------------------------------------------------------------------------------------
@dataclass
class GridSetting:
    """One of GridPG / DiFull / DiPart built around ``base`` (the classifier, input = one cell).

    ``model``: grid image (n*h, n*w, C) -> scores; ``target(cell, cls)`` is the output index to explain.
    """
    name: str
    n: int
    base: keras.Model
    model: keras.Model
    num_classes: int
    cell_shape: tuple
    layer: Optional[str] = None  # DiPart: where the grid's feature map is cut into cells
    preprocess: Optional[Callable] = None
    pixel_range: tuple = (0.0, 255.0)
    _splits: dict = field(default_factory=dict, repr=False)

    @property
    def grid_shape(self) -> tuple:
        h, w, c = self.cell_shape
        return (self.n * h, self.n * w, c)

    @property
    def multi_head(self) -> bool:
        return self.name != "gridpg"

    def target(self, cell, cls):
        """Output index for "class ``cls`` at cell ``cell``" (GridPG: the class itself)."""
        return grid_target(cell, cls, self.num_classes) if self.multi_head else np.asarray(cls)

    def split(self, layer: Optional[str]):
        """``(features, head)``: grid -> activation of ``layer`` (laid out as a grid), activation -> scores.

        ``layer=None`` is the input: ``(None, self.model)``. DiFull computes each cell's activation
        separately and tiles them; GridPG and DiPart split their own (flat) model.
        """
        if layer is None:
            return None, self.model
        if layer not in self._splits:
            self._splits[layer] = self._split(layer)
        return self._splits[layer]

    def _split(self, layer):
        if self.name != "difull":
            features, head = split_model(self.model, self._own_path(layer))
            _check_spatial(features, layer)
            return features, head
        stem, head = split_model(self.base, layer)
        _check_spatial(stem, layer)
        grid_in = keras.Input(self.grid_shape, name="grid")
        features = keras.Model(grid_in, CellsToGrid(self.n)(stem(GridToCells(self.n)(grid_in))),
                               name=_safe(f"difull_features_{layer}"))
        act_in = keras.Input(features.outputs[0].shape[1:], name=_safe(f"{layer}_grid"))
        logits = CellLogits(self.n)(head(GridToCells(self.n)(act_in)))
        return features, keras.Model(act_in, logits, name=_safe(f"difull_head_{layer}"))

    def _own_path(self, layer: str) -> str:
        """The path in ``self.model`` of the base model's layer ``layer`` (the same layer object)."""
        wanted = find_layer(self.base, layer)
        paths = [p for p, obj in layer_graph(self.model).layers.items() if obj is wanted]
        if len(paths) != 1:
            raise ValueError(f"layer {layer!r} is not part of the {self.name} model's trunk"
                             + (f" (DiPart cuts at {self.layer!r}; pick a layer before it)" if self.layer else ""))
        return paths[0]


def _check_spatial(model, layer):
    if len(model.outputs[0].shape) != 4:
        raise ValueError(f"layer {layer!r} has no spatial output (shape {tuple(model.outputs[0].shape)}); "
                         "layer-wise maps need an (N, H, W, C) activation")


def build_setting(model, setting: str = "gridpg", n: int = 2, layer: Optional[str] = None, resize: bool = False,
                  cell_shape=None, preprocess=None, pixel_range=(0.0, 255.0)) -> GridSetting:
    """Build GridPG / DiFull / DiPart around the Keras classifier ``model`` (pixels -> logits).

    ``layer`` (DiPart only): the layer whose output is cut into cells (default: the last layer with a
    spatial output, i.e. the final feature map before pooling). ``resize`` (GridPG only): squeeze the
    grid to the input size of a model that cannot take the larger grid. ``cell_shape`` is required when
    the model's input size is not fixed. ``preprocess`` is applied to pixels before the model.
    """
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    if layer is not None and setting != "dipart":
        raise ValueError(f"layer is only used by the 'dipart' setting, got layer={layer!r} for {setting!r}")
    cell_shape = _cell_shape(model, cell_shape)
    k = int(model.outputs[0].shape[-1])
    h, w, c = cell_shape
    grid_in = keras.Input((n * h, n * w, c), name="grid")
    if setting == "gridpg":
        built = _build_gridpg(model, grid_in, cell_shape, resize)
    elif setting == "difull":
        built = keras.Model(grid_in, CellLogits(n)(model(GridToCells(n)(grid_in))), name=f"difull_{n}x{n}")
    else:
        layer = layer or spatial_layers(model)[-1]
        built = _build_dipart(model, grid_in, n, layer)
    return GridSetting(setting, int(n), model, built, k, cell_shape, layer, preprocess, tuple(pixel_range))


def _cell_shape(model, cell_shape):
    shape = tuple(cell_shape) if cell_shape is not None else tuple(model.inputs[0].shape[1:])
    if len(shape) != 3 or any(s is None for s in shape):
        raise ValueError(f"the model's input size is not fixed ({tuple(model.inputs[0].shape[1:])}); "
                         "pass cell_shape=(h, w, channels)")
    return tuple(int(s) for s in shape)


def _build_gridpg(model, grid_in, cell_shape, resize):
    try:
        flat = at_input_shape(model, tuple(grid_in.shape[1:]))
        return keras.Model(flat.inputs, flat.outputs, name="gridpg")
    except (ValueError, TypeError) as err:
        if not resize:
            raise ValueError(f"model {model.name!r} cannot take the {grid_in.shape[1]}x{grid_in.shape[2]} grid "
                             f"({err}); GridPG needs a fully convolutional classifier with global pooling, or "
                             "resize=True to shrink the grid to the model's input size") from err
    x = keras.layers.Resizing(cell_shape[0], cell_shape[1], interpolation="bilinear", name="grid_resize")(grid_in)
    return keras.Model(grid_in, model(x), name="gridpg_resized")


def _build_dipart(model, grid_in, n, layer):
    stem, head = split_model(model, layer)
    trunk = at_input_shape(stem, tuple(grid_in.shape[1:]))
    _check_spatial(trunk, layer)
    fmap = trunk.outputs[0]
    cell_fmap = tuple(stem.outputs[0].shape[1:3])
    if tuple(fmap.shape[1:3]) != tuple(n * s for s in cell_fmap):
        raise ValueError(f"the grid's feature map at {layer!r} is {tuple(fmap.shape[1:3])}, not {n} x the cell's "
                         f"{cell_fmap}: the trunk's strides/padding do not tile; pick an earlier layer")
    logits = CellLogits(n)(head(GridToCells(n)(fmap)))
    return keras.Model(trunk.inputs, logits, name=_safe(f"dipart_{n}x{n}_{layer}"))


def _safe(name: str) -> str:
    """A Keras model name ("/" is not allowed) from a layer path."""
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in name)


def at_input_shape(model, shape) -> keras.Model:
    """``model`` rebuilt on an ``Input(shape)`` with the same layers (shared weights); nested models too."""
    shape = tuple(shape)
    if tuple(model.inputs[0].shape[1:]) == shape:
        return model

    def reuse(layer):
        if isinstance(layer, keras.Model) and layer is not model and hasattr(layer, "inputs"):
            return at_input_shape(layer, _nested_shape(layer))
        return layer

    return keras.models.clone_model(model, input_tensors=keras.Input(shape), clone_function=reuse)


def _nested_shape(layer):
    shape = tuple(layer.inputs[0].shape[1:])
    return (None, None) + shape[2:] if len(shape) == 3 else shape


def spatial_layers(model, convolutions_only: bool = False) -> list:
    """Names of the valid split layers with a 4-D (N, H, W, C) output, input to output (nested models
    looked into; layers a residual branch bypasses excluded). ``convolutions_only``: only convolutions,
    if any qualifies."""
    names = valid_split_layers(model, ndim=4)
    if not names:
        raise ValueError(f"model {model.name!r} has no valid split layer with a spatial (N, H, W, C) output")
    convs = [n for n in names if "Conv" in type(find_layer(model, n)).__name__]
    return convs if convolutions_only and convs else names


def rao_layers(model, middle: Optional[str] = None, final: Optional[str] = None) -> dict:
    """Rao's three evaluation layers: ``{"input": None, "middle": ..., "final": ...}``.

    Default ``final``: the last spatial layer (the feature map before pooling); ``middle``: the
    convolution half-way through the network.
    """
    convs = spatial_layers(model, convolutions_only=True)
    return {"input": None, "middle": middle or convs[(len(convs) - 1) // 2],
            "final": final or spatial_layers(model)[-1]}


# -- grid data sets --------------------------------------------------------------------------------
@dataclass
class GridDataset:
    """Grid images and the (grid, cell, class) triples to evaluate.

    ``images`` (G, n*h, n*w, C); ``labels``/``sources`` (G, n*n): class and source-image index per cell;
    ``grid``/``cells``/``classes`` (E,): one evaluated attribution each.
    """
    setting: str
    n: int
    images: np.ndarray
    labels: np.ndarray
    sources: np.ndarray
    grid: np.ndarray
    cells: np.ndarray
    classes: np.ndarray
    threshold: float = 0.99
    eligible: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self):
        return len(self.grid)

    def targets(self, setting: GridSetting) -> np.ndarray:
        """One output index per evaluated entry, for ``setting.model``."""
        return np.asarray(setting.target(self.cells, self.classes), np.int32)

    def eval_images(self) -> np.ndarray:
        """(E, n*h, n*w, C): the grid image of each evaluated entry."""
        return self.images[self.grid]


def confident_indices(model, images, labels, threshold: float = 0.99, batch_size: int = 32,
                      preprocess=None) -> np.ndarray:
    """Indices of images the classifier gets right with softmax probability >= ``threshold``."""
    from ..models import as_model

    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")
    labels = np.asarray(labels).astype(np.int64)
    adapter = as_model(model, batch_size=batch_size, preprocess=preprocess)
    probs = adapter.probabilities(np.asarray(images, np.float32))
    rows = np.arange(len(labels))
    ok = (probs.argmax(1) == labels) & (probs[rows, labels] >= threshold)
    return np.flatnonzero(ok)


def make_grid_dataset(model, images, labels, setting: str = "gridpg", n: int = 2, num_grids: Optional[int] = None,
                      threshold: float = 0.99, seed: int = 0, batch_size: int = 32, preprocess=None) -> GridDataset:
    """Grids of cells the classifier ``model`` gets right with confidence >= ``threshold`` (Rao H.1).

    GridPG: ``n*n`` distinct classes per grid, every cell evaluated. DiFull/DiPart: the same class at the
    top-left and bottom-right cells (different images), the other cells from other classes; only the two
    corners are evaluated. Images are drawn without reuse until a class runs out (then reshuffled); no
    image repeats within a grid. ``num_grids`` default: about one use per eligible image.
    """
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < (1 if setting == "gridpg" else 2):
        raise ValueError(f"n must be an integer >= {1 if setting == 'gridpg' else 2} for {setting!r}, got {n!r}")
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int64)
    if images.ndim != 4 or len(images) != len(labels):
        raise ValueError(f"images must be (N, H, W, C) with one label each, got {images.shape} and {labels.shape}")
    eligible = confident_indices(model, images, labels, threshold, batch_size, preprocess)
    pools = _ClassPools(eligible, labels[eligible], np.random.default_rng(seed))
    cells = n * n
    num_grids = max(1, len(eligible) // cells) if num_grids is None else int(num_grids)
    if num_grids < 1:
        raise ValueError(f"num_grids must be >= 1, got {num_grids}")
    sources = np.stack([pools.gridpg(cells) if setting == "gridpg" else pools.corners(cells)
                        for _ in range(num_grids)])
    grids = tile_cells(images[sources])
    eval_cells = np.arange(cells) if setting == "gridpg" else np.array([0, cells - 1])
    grid_idx = np.repeat(np.arange(num_grids), len(eval_cells))
    cell_idx = np.tile(eval_cells, num_grids)
    cell_labels = labels[sources]
    return GridDataset(setting, n, grids, cell_labels, sources, grid_idx, cell_idx,
                       cell_labels[grid_idx, cell_idx], threshold, eligible)


class _ClassPools:
    """Per-class queues of eligible image indices, drawn without reuse until a queue runs dry."""

    def __init__(self, indices, classes, rng):
        self.rng = rng
        self.members = {int(c): indices[classes == c] for c in np.unique(classes)}
        self.queues = {c: [] for c in self.members}

    def draw(self, cls, exclude=()):
        for _ in range(2):
            queue = [i for i in self.queues[cls] if i not in exclude]
            if queue:
                self.queues[cls].remove(queue[0])
                return queue[0]
            self.queues[cls] = list(self.rng.permutation(self.members[cls]))
        raise ValueError(f"class {cls} has too few confident images for one grid")

    def _draw_any(self, classes, exclude):
        for cls in classes:
            try:
                return self.draw(int(cls), exclude)
            except ValueError:
                continue
        raise ValueError("too few confident images to fill a grid without repeating one")

    def gridpg(self, cells):
        classes = sorted(self.members)
        if len(classes) < cells:
            raise ValueError(f"GridPG needs {cells} distinct classes with confident images, found {len(classes)} "
                             "(lower threshold or use a smaller n)")
        return np.array([self.draw(int(c)) for c in self.rng.choice(classes, cells, replace=False)])

    def corners(self, cells):
        pairs = [c for c, m in self.members.items() if len(m) >= 2]
        others = sorted(self.members)
        if not pairs or len(others) < 2:
            raise ValueError("DiFull/DiPart need a class with two confident images and a second class "
                             "(lower threshold or pass more images)")
        cls = int(self.rng.choice(pairs))
        first = self.draw(cls)
        out = [first] + [None] * (cells - 2) + [self.draw(cls, exclude=(first,))]
        rest = list(self.rng.permutation([c for c in others if c != cls]))
        for i in range(1, cells - 1):
            order = rest[i % len(rest):] + rest[:i % len(rest)]
            out[i] = self._draw_any(order, tuple(x for x in out if x is not None))
        return np.array(out)


def tile_cells(cells: np.ndarray) -> np.ndarray:
    """(G, n*n, h, w, C) cells, row-major -> (G, n*h, n*w, C) grid images."""
    g, k, h, w, c = cells.shape
    n = int(round(np.sqrt(k)))
    if n * n != k:
        raise ValueError(f"the number of cells must be a square, got {k}")
    return cells.reshape(g, n, n, h, w, c).transpose(0, 1, 3, 2, 4, 5).reshape(g, n * h, n * w, c)


# -- attribution maps at the input / a middle / the final layer -----------------------------------
def layer_maps(setting: GridSetting, images, targets, method: str = "ig", layer: Optional[str] = None,
               reduce: str = "auto", smooth_kernel: Optional[int] = None, smooth_sigma: Optional[float] = None,
               batch_size: int = 32, seed=None, **options) -> np.ndarray:
    """(E, H, W) maps of ``method`` for ``targets`` on ``setting``, at grid resolution (Rao Sec. 3.1.2).

    ``layer=None`` explains the input; a layer name explains the head ``activation -> scores`` with the
    activation as its "image" (any tfxattr method; the "black" baseline is the zero activation), sums
    over channels and upsamples bilinearly (near cell borders this spreads a little of a cell's map into
    its neighbours, as in Rao's code, so DiFull scores at coarse layers are close to, not exactly, 1).
    ``reduce``: "sum" (signed channel sum, Rao), "sum_abs" or "abs_sum"; "auto" = "sum_abs" for the plain
    gradient (Rao, via Captum's ``abs=True``), "abs_sum" for GGIG (its paper shows |channel sum|), "sum"
    otherwise. ``smooth_kernel``: Gaussian smoothing (S-IntGrad, S-IxG).
    """
    from ..explain import explain
    from ..models import as_model

    images = np.asarray(images, np.float32)
    if reduce == "auto":
        reduce = AUTO_REDUCE.get(method, "sum") if not options.get("times_input", False) else "sum"
    _check_reduce(reduce)
    features, head = setting.split(layer)
    if features is None:
        adapter = as_model(head, batch_size=batch_size, preprocess=setting.preprocess, pixel_range=setting.pixel_range)
        inputs = images
    else:
        x = setting.preprocess(images) if setting.preprocess is not None else images
        inputs = np.asarray(features.predict(x, batch_size=batch_size, verbose=0), np.float32)
        # "black" (the default baseline) is the zero activation, as Captum's default that Rao used
        hi = float(max(inputs.max(), 1e-6))
        adapter = as_model(head, batch_size=batch_size, input_shape=inputs.shape[1:], pixel_range=(0.0, hi))
    attr = explain(adapter, inputs, method, target=np.asarray(targets), batch_size=batch_size, seed=seed,
                   progress=False, **options).attribution
    attr = attr[None] if attr.ndim == 3 else attr
    maps = upsample(reduce_channels(attr, reduce), images.shape[1:3])
    if smooth_kernel is not None:
        maps = gaussian_smooth(maps, smooth_kernel, smooth_sigma)
    return maps


def _check_reduce(reduce):
    if reduce not in REDUCE:
        raise ValueError(f"reduce must be one of {REDUCE} (or 'auto' in layer_maps), got {reduce!r}")


def upsample(maps, size) -> np.ndarray:
    """Bilinear resize of (E, h, w) maps to ``size`` (half-pixel centres, as PyTorch's align_corners=False)."""
    maps = np.asarray(maps, np.float32)
    if tuple(maps.shape[1:3]) == tuple(size):
        return maps
    return tf.image.resize(maps[..., None], tuple(size), method="bilinear").numpy()[..., 0]


def gaussian_kernel(kernel_size: int, sigma: Optional[float] = None) -> np.ndarray:
    """Normalised 1-D Gaussian of odd length ``kernel_size``; ``sigma`` default ``kernel_size / 4``."""
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, (int, np.integer)) or kernel_size < 1 \
            or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
    sigma = kernel_size / 4.0 if sigma is None else float(sigma)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma!r}")
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


# -- localization score ---------------------------------------------------------------------------
def cell_masses(maps, n: int) -> np.ndarray:
    """(E, n*n) positive attribution per cell (row-major) of (E, H, W) maps, H and W divisible by n."""
    maps = np.asarray(maps, np.float64)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (E, H, W), got shape {maps.shape}")
    e, hh, ww = maps.shape
    if hh % n or ww % n:
        raise ValueError(f"map size {hh}x{ww} is not divisible by n={n}; upsample to the grid size first")
    pos = np.clip(maps, 0.0, None).reshape(e, n, hh // n, n, ww // n)
    return pos.sum(axis=(2, 4)).reshape(e, n * n)


def localization_scores(maps, cells, n: int, size=None, eps: float = 1e-7):
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


# -- AggAtt ---------------------------------------------------------------------------------------
@dataclass
class AggAtt:
    """``bins`` (B, H, W) mean positive maps, best-localized first; ``counts`` (B,); ``scale``: the
    method's common colour scale; ``order``: entry indices sorted by score (ties: mass inside)."""
    bins: np.ndarray
    counts: np.ndarray
    edges: tuple
    scale: float
    order: np.ndarray
    scores: np.ndarray
    cell: int
    n: int


def aggatt(maps, cells, n: int, cell: int = 0, edges: Sequence[float] = AGGATT_EDGES,
           clip_percentile: float = 0.5, size=None) -> AggAtt:
    """Rao's AggAtt for the maps explaining cell ``cell``: sort, bin at ``edges``, average, one scale.

    ``scale``: the value below which ``100 - clip_percentile`` % of the bins' total positive mass lies
    (the cumulative-sum threshold of Rao's code), so the top ``clip_percentile`` % saturates.
    """
    edges = tuple(float(e) for e in edges)
    if len(edges) < 2 or edges[0] != 0.0 or edges[-1] != 1.0 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges must rise strictly from 0 to 1, got {edges}")
    maps = np.asarray(maps, np.float64)
    if size is not None:
        maps = upsample(maps, size).astype(np.float64)
    cells = np.broadcast_to(np.asarray(cells), (len(maps),))
    chosen = np.flatnonzero(cells == cell)
    scores, inside = localization_scores(maps[chosen], cell, n)
    order = chosen[np.lexsort((-inside, -scores))]
    bounds = [int(p * len(order)) for p in edges]
    counts = np.diff(bounds)
    if np.any(counts == 0):
        need = int(np.ceil(1.0 / min(np.diff(edges))))
        raise ValueError(f"{len(order)} maps for cell {cell} leave an AggAtt bin empty; need at least about {need}")
    pos = np.clip(maps[order], 0.0, None)
    bins = np.stack([pos[a:b].mean(0) for a, b in zip(bounds, bounds[1:])])
    sorted_scores = localization_scores(maps[order], cell, n)[0]
    return AggAtt(bins.astype(np.float32), counts, edges, _cumulative_threshold(bins, 100.0 - clip_percentile),
                  order, sorted_scores, int(cell), int(n))


def _cumulative_threshold(values, percentile):
    v = np.sort(np.asarray(values, np.float64).ravel())
    csum = np.cumsum(v)
    if csum[-1] <= 0:
        return 1.0
    idx = min(int(np.searchsorted(csum, csum[-1] * percentile / 100.0)), len(v) - 1)
    return float(v[idx]) or float(v[-1])


def aggatt_figure(results: dict, tile: int = 128) -> np.ndarray:
    """uint8 RGB figure: one row per method (``{name: AggAtt}``), one column per bin, target cell boxed."""
    from PIL import Image, ImageDraw

    from ..visualize import colorize

    if not results:
        raise ValueError("results is empty: pass {method name: AggAtt}")
    first = next(iter(results.values()))
    label_w, head_h, gap = 110, 18, 4
    n_bins = len(first.bins)
    fig = Image.new("RGB", (label_w + n_bins * (tile + gap), head_h + len(results) * (tile + gap)), "white")
    draw = ImageDraw.Draw(fig)
    for j, (a, b) in enumerate(zip(first.edges, first.edges[1:])):
        draw.text((label_w + j * (tile + gap) + 4, 3), f"{100 * a:g}-{100 * b:g}%", fill="black")
    for i, (name, res) in enumerate(results.items()):
        y = head_h + i * (tile + gap)
        draw.text((4, y + tile // 2 - 6), str(name)[:16], fill="black")
        for j, heat in enumerate(res.bins):
            img = Image.fromarray(colorize(np.clip(heat / res.scale, 0, 1))).resize((tile, tile), Image.BILINEAR)
            x = label_w + j * (tile + gap)
            fig.paste(img, (x, y))
            r, c = divmod(res.cell, res.n)
            s = tile / res.n
            draw.rectangle([x + c * s, y + r * s, x + (c + 1) * s - 1, y + (r + 1) * s - 1], outline=(60, 160, 255))
    return np.asarray(fig)


def save_aggatt_png(results: dict, path: str, tile: int = 128) -> str:
    """Write :func:`aggatt_figure` to ``path`` (PNG, pillow) and return the path."""
    import os

    from PIL import Image

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(aggatt_figure(results, tile)).save(path)
    return path


# -- the metrics-registry view and a one-call evaluation -----------------------------------------
def grid_localization(model, images, maps, targets=None, masks=None, batch_size=32, *, cells=None, n: int = 2,
                      reduce: str = "sum", eps: float = 1e-7):
    """Rao et al. grid localization score (Eq. 2) of maps explaining one cell each; score "localization".

    ``images``: the grid images (only their size is used: maps are upsampled bilinearly to it; None keeps
    the maps' size). ``maps``: (N,h,w), (N,h,w,C) attributions (channels reduced by ``reduce``: "sum",
    Rao's signed sum, "sum_abs" or "abs_sum") or an Explanation. ``cells`` (required): the cell each map explains.
    ``model``, ``targets`` and ``masks`` are not used. Higher is better; chance is ``1/n^2``.
    """
    from ..explanation import Explanation
    from .base import MetricResult

    if cells is None:
        raise ValueError("cells is required: the grid cell (row-major, 0 = top-left) each map explains")
    _check_reduce(reduce)
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
                          reduce: str = "auto", batch_size: int = 32, seed=None, keep_maps: bool = False, **options):
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
