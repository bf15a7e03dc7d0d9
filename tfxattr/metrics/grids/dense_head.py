"""GridPG for classifiers with a dense head (Flatten + Dense, e.g. VGG16/19): the "classifier kernel".

Rao, Böhle, Schiele (CVPR 2022), supplement Sec. F ("Classifier Module"): "the GridPG setting uses a
classifier kernel over the composite feature map for the full grid ... using a stride of 1, the
classification kernel slides over ((n-1)d+1)^2 windows" of the grid's d*n x d*n feature map.

What the reference does (github.com/sukrutrao/Attribution-Evaluation, read, not copied):
``attribution_evaluation/models/models.py``, ``VGG11Model._create_classifier_kernel`` reshapes
torchvision VGG11's first ``Linear(512*7*7, 4096)`` into a ``Conv2d(512, 4096, kernel_size=7, padding=0)``
(stride 1), the two following ``Linear`` layers into 1x1 convolutions, and ``VGG11Model.get_logits`` (when
``use_classifier_kernel``) runs conv1 -> ReLU -> Dropout -> conv2 -> ReLU -> Dropout -> conv3 on the grid's
feature map and then ``AdaptiveAvgPool2d(1)``: the mean of the spatial **logits** over all window
positions (``GridContainerBase.predict`` applies the softmax only after that mean).
``models/settings.py``, ``GridPGContainer.__init__`` switches the kernel on for GridPG (DiFull/DiPart
switch it off and feed each cell's 7x7 map to the dense head). ``get_pool`` is the identity for VGG11.

What tfxattr does: the same construction for any Functional/Sequential Keras model whose head after the
last spatial layer is ``Flatten`` followed by a chain of ``Dense`` layers (with parameter-free element-wise
layers such as ``Dropout``/``ReLU``/``Activation`` in between). The first Dense becomes a stride-1 "valid"
convolution whose kernel is its ``(h*w*c, units)`` kernel reshaped to ``(h, w, c, units)`` (Keras'
channels-last Flatten order, the counterpart of PyTorch's ``(units, c, h, w)``); later Dense layers act on
the last axis (a 1x1 convolution with the same weights); a ``GlobalAveragePooling2D`` averages the spatial
logits. Differences to the reference: the head is read from the Keras graph instead of being hard-coded
for VGG11, and the weights are the model's own variables (shared, not copied), so a later change of the
model's weights (e.g. a randomisation check) also changes the grid model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import keras
from keras import ops

from ...checks import positive_int
from ...models.layers import layer_graph, split_model

# layers without parameters that act element-wise (or are the identity at inference): they commute with
# Flatten and with the sliding window, so the grid model applies them to the 4-D map unchanged
ELEMENTWISE = (keras.layers.Dropout, keras.layers.GaussianDropout, keras.layers.GaussianNoise,
               keras.layers.AlphaDropout, keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU,
               keras.layers.ELU, keras.layers.Identity)
# activations after which an average over windows is no longer an average of logits (the reference's)
_PROBABILITY_ACTIVATIONS = (keras.activations.softmax, keras.activations.log_softmax)


@dataclass(frozen=True)
class DenseHead:
    """A model's Flatten + Dense head: ``layer`` (the spatial layer feeding the Flatten), ``window``
    (its (h, w, c) output at the native input size) and ``layers`` (the head's layers after the Flatten)."""
    layer: str
    window: tuple
    layers: tuple


def dense_head(model, layer: str) -> Optional[DenseHead]:
    """The Flatten + Dense head after ``layer`` (a valid split layer with a 4-D output), or None when the
    head does not start with a Flatten. Raises ValueError for a Flatten head that cannot slide (a branch,
    a layer other than Dense / element-wise ones, a softmax, a channels-first Flatten)."""
    _, head = split_model(model, layer)
    steps = [s for s in layer_graph(head).steps if s.layer is not None]
    if not steps or not isinstance(steps[0].layer, keras.layers.Flatten):
        return None
    flatten = steps[0].layer
    where = f"model {model.name!r}: the Flatten + Dense head after {layer!r}"
    if getattr(flatten, "data_format", "channels_last") != "channels_last":
        raise ValueError(f"{where} flattens channels first; the classifier kernel needs a channels-last Flatten")
    window = tuple(head.inputs[0].shape[1:])
    if len(window) != 3 or any(s is None for s in window):
        raise ValueError(f"{where} has no fixed (h, w, c) input ({window})")
    for prev, step in zip(steps, steps[1:]):
        if len(step.inputs) != 1 or step.inputs != prev.outputs:
            raise ValueError(f"{where} is not a chain of layers ({step.path!r} is fed by more than the layer "
                             "before it); the classifier kernel needs Flatten -> Dense -> ... -> Dense")
    layers = tuple(s.layer for s in steps[1:])
    dense = [x for x in layers if isinstance(x, keras.layers.Dense)]
    if not dense:
        raise ValueError(f"{where} has no Dense layer")
    for x in layers:
        if isinstance(x, keras.layers.Softmax) or getattr(x, "activation", None) in _PROBABILITY_ACTIVATIONS:
            raise ValueError(f"{where} applies a softmax in {x.name!r}; Rao et al. average the logits over the "
                             "window positions: build the model without it (classifier_activation=None)")
        if not isinstance(x, (keras.layers.Dense,) + ELEMENTWISE):
            raise ValueError(f"{where} contains {type(x).__name__} {x.name!r}; the classifier kernel supports "
                             f"Dense and the element-wise layers {[t.__name__ for t in ELEMENTWISE]}")
    return DenseHead(layer, tuple(int(s) for s in window), layers)


@keras.saving.register_keras_serializable(package="tfxattr")
class ClassifierKernel(keras.layers.Layer):
    """A Dense layer that follows a Flatten of an (h, w, c) map, slid over a larger map as a stride-1
    "valid" (h, w) convolution: (B, H, W, c) -> (B, H-h+1, W-w+1, units). On an (h, w, c) input it equals
    ``dense(flatten(x))`` at the single position. Rao et al.'s ``classifier_conv1``
    (Attribution-Evaluation, ``models/models.py``); the Dense layer's own variables are used (shared)."""

    def __init__(self, dense, window, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(dense, keras.layers.Dense):
            raise TypeError(f"dense must be a keras.layers.Dense, got {type(dense).__name__}")
        if len(window) != 3:
            raise ValueError(f"window must be (h, w, c), got {window!r}")
        self.dense = dense
        self.window = tuple(positive_int(s, "window") for s in window)

    def build(self, input_shape):
        h, w, c = self.window
        if input_shape[-1] is not None and int(input_shape[-1]) != c:
            raise ValueError(f"{self.name}: the map has {input_shape[-1]} channels, the kernel expects {c}")
        if not self.dense.built:  # after loading from a config
            self.dense.build((None, h * w * c))
        self.built = True

    def call(self, x):
        h, w, c = self.window
        kernel = ops.reshape(self.dense.kernel, (h, w, c, self.dense.units))
        y = ops.conv(x, ops.cast(kernel, x.dtype), strides=1, padding="valid")
        if self.dense.use_bias:
            y = y + ops.cast(self.dense.bias, y.dtype)
        return self.dense.activation(y)

    def compute_output_shape(self, shape):
        h, w, _ = self.window
        return (shape[0], None if shape[1] is None else shape[1] - h + 1,
                None if shape[2] is None else shape[2] - w + 1, self.dense.units)

    def get_config(self):
        return {**super().get_config(), "dense": keras.saving.serialize_keras_object(self.dense),
                "window": list(self.window)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        dense = keras.saving.deserialize_keras_object(config.pop("dense"))
        return cls(dense, **config)


def slide_head(head: DenseHead, fmap):
    """Rao et al.'s GridPG head on the (B, H, W, c) feature map ``fmap`` of a grid: every (h, w) window
    through the dense head (the first Dense as a :class:`ClassifierKernel`, the rest on the last axis), then
    the mean of the spatial logits (the reference's ``AdaptiveAvgPool2d(1)``). (B, K) logits."""
    h, w, _ = head.window
    size = tuple(fmap.shape[1:3])
    if any(s is not None and s < k for s, k in zip(size, (h, w))):
        raise ValueError(f"the grid's feature map at {head.layer!r} is {size}, smaller than the classifier "
                         f"kernel {(h, w)}")
    x, kernel_done = fmap, False
    for layer in head.layers:
        if isinstance(layer, keras.layers.Dense) and not kernel_done:
            x = ClassifierKernel(layer, head.window, name=f"{layer.name}_classifier_kernel")(x)
            kernel_done = True
        else:
            x = layer(x)
    return keras.layers.GlobalAveragePooling2D(name="gridpg_window_mean")(x)
