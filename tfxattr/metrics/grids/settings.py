"""GridPG, DiFull and DiPart: the grid models built around a classifier, and the layers Rao evaluates at."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import keras
import numpy as np

from ...checks import one_of, positive_int
from ...models.layers import find_layer, layer_graph, split_model, valid_split_layers
from .dense_head import dense_head, slide_head
from .layout import CellLogits, CellsToGrid, GridToCells, grid_target

SETTINGS = ("gridpg", "difull", "dipart")
# the classifiers' default pixel range (the demo model and Keras applications take [0, 255] pixels)
PIXEL_RANGE = (0.0, 255.0)


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
    pixel_range: tuple = PIXEL_RANGE
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
                  cell_shape=None, preprocess=None, pixel_range=PIXEL_RANGE) -> GridSetting:
    """Build GridPG / DiFull / DiPart around the Keras classifier ``model`` (pixels -> logits).

    ``layer`` (DiPart only): the layer whose output is cut into cells (default: the last layer with a
    spatial output, i.e. the final feature map before pooling). GridPG on a model whose head is Flatten +
    Dense (VGG16/19) slides that head over the grid's final feature map as Rao et al.'s "classifier
    kernel" and averages the logits (:mod:`.dense_head`; their ``VGG11Model._create_classifier_kernel``).
    ``resize`` (GridPG only): squeeze the grid to the input size of a model that can take neither the
    larger grid nor a classifier kernel. ``cell_shape`` is required when the model's input size is not
    fixed. ``preprocess`` is applied to pixels before the model.
    """
    one_of(setting, "setting", SETTINGS)
    n = positive_int(n, "n")
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
    return GridSetting(setting, n, model, built, k, cell_shape, layer, preprocess, tuple(pixel_range))


def _cell_shape(model, cell_shape):
    shape = tuple(cell_shape) if cell_shape is not None else tuple(model.inputs[0].shape[1:])
    if len(shape) != 3 or any(s is None for s in shape):
        raise ValueError(f"the model's input size is not fixed ({tuple(model.inputs[0].shape[1:])}); "
                         "pass cell_shape=(h, w, channels)")
    return tuple(int(s) for s in shape)


def _build_gridpg(model, grid_in, cell_shape, resize):
    try:
        head = _dense_head_of(model)
    except ValueError:  # a Flatten head that cannot slide: only resize=True can still take the grid
        if not resize:
            raise
        head = None
    if head is not None:
        return _build_classifier_kernel(model, grid_in, head)
    try:
        flat = at_input_shape(model, tuple(grid_in.shape[1:]))
        return keras.Model(flat.inputs, flat.outputs, name="gridpg")
    except (ValueError, TypeError) as err:
        if not resize:
            raise ValueError(f"model {model.name!r} cannot take the {grid_in.shape[1]}x{grid_in.shape[2]} grid "
                             f"({err}); GridPG needs a fully convolutional classifier with global pooling or a "
                             "Flatten + Dense head after the last feature map, or resize=True to shrink the grid "
                             "to the model's input size") from err
    x = keras.layers.Resizing(cell_shape[0], cell_shape[1], interpolation="bilinear", name="grid_resize")(grid_in)
    return keras.Model(grid_in, model(x), name="gridpg_resized")


def _dense_head_of(model):
    """The model's Flatten + Dense head after its last spatial layer, or None (no spatial layer, or a
    head that does not start with a Flatten, e.g. global pooling)."""
    try:
        last = spatial_layers(model)[-1]
    except (ValueError, TypeError):  # no spatial layer (Flatten on the pixels), no layer graph (subclassed)
        return None
    return dense_head(model, last)


def _build_classifier_kernel(model, grid_in, head):
    """Rao et al.'s GridPG for a dense head: the trunk on the whole grid, the head slid over its feature map
    as a classifier kernel (stride 1), the mean of the spatial logits (:func:`.dense_head.slide_head`)."""
    stem, _ = split_model(model, head.layer)
    trunk = at_input_shape(stem, tuple(grid_in.shape[1:]))
    return keras.Model(trunk.inputs[0], slide_head(head, trunk.outputs[0]), name="gridpg_classifier_kernel")


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
    """A nested model's input shape with height and width left free (so it takes the grid's feature map)."""
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
