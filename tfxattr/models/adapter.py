"""Model adapters: what scalar f_c(x) is explained, and its gradient, batched.

Every model a user can hand us (anything a model source recognises: ``tfxattr/models/sources.py``)
becomes one :class:`ModelAdapter` (built by :func:`~tfxattr.models.as_model`, :mod:`tfxattr.models.build`).
Preprocessing is composed *inside* the differentiable function, so images, baselines and attributions all
live in the user's pixel space.

Two ranges, two names. ``pixel_range``: how the user's images are scaled. ``input_range``: what the
model reads, declared by the model (a source such as a Keras application or "demo", a leading
``Rescaling`` or adapted ``Normalization`` layer) or by the user (``input_range=``). When both are known
and differ, images are mapped linearly from one to the other inside the gradient. When the model's
input range is unknown, images reach the model unchanged, whatever ``pixel_range`` says; ``pixel_range``
then only places baselines ("black" is its low end), perturbations and figures.
"""
from __future__ import annotations

import copy
import warnings
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from ..batching import chunks, spans
from ..checks import positive_int
from ..inputs import image_range, scale_hint
from . import compat
from .devices import check_strategy, run_split
from .introspect import PROBE_SIZE, probe_head, select_output
from .objective import Objective, objective_for
from .options import ModelOptions, class_name_list
from .sources import WEIGHT_NONE

# the images' range assumed when neither the images' range nor the model's is declared (8-bit pixels); it only
# places baselines and figures: with the model's input range unknown, images are never remapped
DEFAULT_PIXEL_RANGE = (0.0, 255.0)
# where the pixel range came from (ModelAdapter.range_source)
RANGE_SOURCES = ("pixel_range", "input_range", "images", "assumed")
# images "cannot be in the declared scale" when the range spans more than this many units (0..255)
# while every value lies within [-1, 1] (or the reverse): the two conventions differ by ~100x
UNIT_SCALE = 2.0
# the nominal value range of a network's own input (after normalisation); only names it, never rescales
NETWORK_RANGE = (-1.0, 1.0)


class ModelAdapter:
    """One differentiable view of a classifier: ``x (pixels) -> scores (N, classes)``.

    Implements :class:`~tfxattr.models.contracts.KerasEvaluator` (``keras_model`` is None for
    SavedModels and callables). ``values_and_gradients(x, targets)`` returns ``f_c(x)`` and
    ``df_c/dx`` from the same forward pass, in chunks of ``batch_size`` through one ``tf.function``;
    the :class:`~tfxattr.models.objective.Objective` says which scalar ``f_c`` is.
    ``num_classes`` is the model's output width (one sigmoid unit is two classes).
    ``pixel_range``: the range of the images the user passes; ``input_range``: the range the model
    reads (None: unknown). When both are known and differ, images are mapped linearly from one to the
    other inside the gradient; with ``input_range`` None they reach the model unchanged. ``pixel_range``
    defaults to ``input_range``, else to :data:`DEFAULT_PIXEL_RANGE` (assumed; :meth:`for_images` replaces
    an assumed range by the conventional range of the images). ``class_names``: one per class.
    ``strategy``: a ``tf.distribute.Strategy`` (:meth:`with_strategy`) across whose replicas every chunk is
    split (:mod:`~tfxattr.models.devices`); None runs on the default device.
    """

    strategy = None

    def __init__(self, fn: Callable, options: ModelOptions, name: str = "model", keras_model=None, keep=None,
                 objective: Optional[Objective] = None):
        """``fn``: the model, raw output of pixels after ``options.preprocess``; ``options``: resolved (its
        ``input_shape`` and ``num_classes`` known; ``head`` None is probed, ``weights`` are the weights loaded);
        ``keras_model``: the keras.Model behind ``fn`` (None: a SavedModel or a callable); ``keep``: objects
        (a loaded SavedModel) that must live as long as the adapter; ``objective``: the explained scalar
        (default: the one of ``options.head``)."""
        if options.input_shape is None or options.num_classes is None:
            raise ValueError(f"{name}: a ModelAdapter needs input_shape and num_classes, got {options.input_shape} "
                             f"and {options.num_classes}")
        self._fn = fn
        self.input_shape = options.input_shape
        self.units = options.num_classes
        self.user_preprocess = options.preprocess
        self.batch_size = options.batch_size
        self.precision = options.precision
        self.input_range = options.input_range
        if options.pixel_range is not None:
            self.pixel_range, self.range_source = options.pixel_range, "pixel_range"
        elif self.input_range is not None:
            self.pixel_range, self.range_source = self.input_range, "input_range"
        else:
            self.pixel_range, self.range_source = DEFAULT_PIXEL_RANGE, "assumed"
        self.preprocess = _compose(_range_map(self.pixel_range, self.input_range), options.preprocess)
        self.name = name
        self.class_names = class_name_list(options.class_names)
        self.keras_model = keras_model
        self.weights = options.weights
        self._keep = keep
        self._network = None
        if objective is None:
            head = options.head or probe_head(self._raw, self.input_shape, self.pixel_range, self.units)
            objective = objective_for(head, options.output, self.units)
        self.objective = objective.with_output(options.output)
        self.num_classes = self.objective.classes(self.units)
        _check_class_count(self.class_names, self.num_classes, name)
        self._warn_explained_probabilities()
        if options.strategy is not None:
            self.strategy = options.strategy
        spec = tf.TensorSpec((None,) + self.input_shape, tf.float32)
        # one trace per adapter (fixed signatures): compat.traced_per_model keeps TensorFlow from calling
        # several models explained in a row a retracing of one function
        self._scores_fn = compat.traced_per_model(compat.graph_function(lambda x: self.objective.scores(self._raw(x)),
                                                              input_signature=[spec]))
        self._probabilities_fn = compat.traced_per_model(compat.graph_function(
            lambda x: self.objective.probabilities(self._raw(x)), input_signature=[spec]))
        self._both_fn = compat.traced_per_model(compat.graph_function(self._scores_and_probabilities,
                                                                     input_signature=[spec]))
        self._vg_fn = compat.traced_per_model(compat.graph_function(
            self._values_and_gradients, input_signature=[spec, tf.TensorSpec((None,), tf.int32)]))

    @property
    def output(self) -> str:
        return self.objective.output

    @property
    def head(self) -> str:
        """What the model's raw output is (see :data:`~tfxattr.models.objective.HEADS`)."""
        return self.objective.head

    @property
    def ends_in_softmax(self) -> bool:
        return self.objective.head == "softmax"

    @property
    def random_weights(self) -> bool:
        return self.weights == WEIGHT_NONE

    def describe(self) -> str:
        """What was detected: the head, the input, the images' range and the model's, and what happens between."""
        where = {"pixel_range": "pixel_range", "input_range": "the model's range", "images": "seen in the images",
                 "assumed": "assumed"}[self.range_source]
        text = f"{self.name}: {self.objective.describe(self.units)}; input {self.input_shape}; images in " \
               f"{self.pixel_range} ({where}), "
        if self.input_range is None:
            text += "the model's input range is unknown: images reach it unchanged (pass input_range= to declare it)"
        elif self.input_range == self.pixel_range:
            text += f"the model reads {self.input_range}"
        else:
            text += f"the model reads {self.input_range}: images are mapped linearly onto it"
        if self.class_names:
            text += f"; {len(self.class_names)} class names"
        return text

    def _warn_explained_probabilities(self):
        if self.output != "logit" or self.head not in ("softmax", "sigmoid"):
            return
        if self.head == "softmax":
            msg = ("the model already ends in a softmax, so output='logit' explains probabilities. Build it "
                   "without the final softmax (e.g. classifier_activation=None) to explain logits, or pass "
                   "output='probability' to silence this warning.")
        else:
            msg = ("the model ends in a sigmoid, so its logits are recovered as log(p) - log(1 - p), which "
                   "saturates for |logit| > 16. Build it without the final sigmoid to explain exact logits, or "
                   "pass output='probability' to silence this warning.")
        warnings.warn(f"{self.name}: {msg}", UserWarning, stacklevel=4)

    # -- the differentiable function -------------------------------------------------
    def _raw(self, x):
        if self.preprocess is not None:
            x = self.preprocess(x)
        return tf.cast(self._fn(x), tf.float32)  # a reduced-precision model's output, as float32

    def _scores_and_probabilities(self, x):
        raw = self._raw(x)
        return tf.concat([self.objective.scores(raw), self.objective.probabilities(raw)], axis=-1)

    def _values_and_gradients(self, x, targets):
        with tf.GradientTape() as tape:
            tape.watch(x)
            values = self.objective.explained(self._raw(x), targets)
        return values, tape.gradient(values, x)

    # -- public, chunked -------------------------------------------------------------
    def run(self, fn, *args):
        """``fn(*args)`` for one chunk (rows first): on the default device, or split across the replicas of
        :attr:`strategy` with the outputs concatenated (the same rows, the same values)."""
        return fn(*args) if self.strategy is None else run_split(self.strategy, fn, *args)

    def _chunked(self, fn, x, batch_size, width):
        x = tf.convert_to_tensor(x, tf.float32)
        out = [self.run(fn, rows) for rows in chunks(x, batch_size or self.batch_size)]
        return tf.concat(out, 0).numpy() if out else np.zeros((0, width), np.float32)

    def scores(self, x, batch_size: Optional[int] = None) -> np.ndarray:
        """Logits or probabilities (per ``output``) of pixel images ``x`` (N,H,W,C)."""
        return self._chunked(self._scores_fn, x, batch_size, self.num_classes)

    def probabilities(self, x, batch_size: Optional[int] = None) -> np.ndarray:
        """Class probabilities, whatever ``output`` says (metrics use these)."""
        return self._chunked(self._probabilities_fn, x, batch_size, self.num_classes)

    def scores_and_probabilities(self, x, batch_size: Optional[int] = None):
        """``(scores, probabilities)`` (N, classes) each, from one forward pass."""
        both = self._chunked(self._both_fn, x, batch_size, 2 * self.num_classes)
        return both[:, :self.num_classes], both[:, self.num_classes:]

    def values_and_gradients(self, x, targets, batch_size: Optional[int] = None):
        """``(f_c(x) (N,), df_c/dx (N,H,W,C))`` as tf.Tensors, chunked by ``batch_size``."""
        x = tf.convert_to_tensor(x, tf.float32)
        targets = tf.convert_to_tensor(targets, tf.int32)
        if not tf.executing_eagerly():  # traced by a method's graph (export): the caller's chunk is the batch
            self._check_traceable()
            return self._values_and_gradients(x, targets)
        b = batch_size or self.batch_size
        if len(x) <= b:
            return self.run(self._vg_fn, x, targets)
        parts = [self.run(self._vg_fn, x[span], targets[span]) for span in spans(len(x), b)]
        return tf.concat([v for v, _ in parts], 0), tf.concat([g for _, g in parts], 0)

    def values(self, x, targets, batch_size: Optional[int] = None) -> tf.Tensor:
        """``f_c(x)`` only (one forward pass, no gradient)."""
        if not tf.executing_eagerly():  # traced by a method's graph (export): the caller's chunk is the batch
            self._check_traceable()
            return self.objective.explained(self._raw(tf.convert_to_tensor(x, tf.float32)),
                                            tf.convert_to_tensor(targets, tf.int32))
        s = self.scores(x, batch_size)
        return tf.gather(tf.convert_to_tensor(s), tf.convert_to_tensor(targets, tf.int32), axis=1, batch_dims=1)

    def _check_traceable(self):
        if self.strategy is not None:
            raise ValueError(f"{self.name}: a model with a strategy cannot be traced into one graph (export); "
                             "export builds its own single-device model")

    def for_images(self, images) -> "ModelAdapter":
        """This adapter, or, when neither the images' range nor the model's is declared (the pixel range is
        only assumed), a copy whose pixel range is the conventional range of ``images``
        (:func:`~tfxattr.inputs.image_range`). The model is unchanged either way (its input range is
        unknown, so images reach it as they are); only baselines, perturbations and figures move."""
        if self.range_source != "assumed":
            return self
        seen = image_range(images)
        if seen is None or seen == self.pixel_range:
            return self
        twin = copy.copy(self)  # the same traced functions: with no input range there is no map to change
        twin.pixel_range, twin.range_source = seen, "images"
        return twin

    def check_pixels(self, images: np.ndarray, argument: str = "images"):
        """Warn when ``images`` cannot be in the scale of :attr:`pixel_range` (all in [-1, 1] for a 0..255
        range, or far above a unit range); the warning names ``pixel_range``, the option that says how
        images are scaled, and what it changes: the linear map onto the model's input range when that is
        known, only baselines and figures when it is not (images then reach the model unchanged)."""
        lo, hi = self.pixel_range
        vmin, vmax = float(np.min(images)), float(np.max(images))
        if vmin == vmax:  # a constant image says nothing about the scale
            return
        if self.input_range is None:
            effect = (f"the model's input range is unknown, so images reach {self.name!r} unchanged either way; "
                      "pixel_range only places baselines ('black' is its low end) and figures. Pass "
                      "input_range=(low, high) if the model reads another range")
        else:
            effect = f"images are mapped from pixel_range onto the range {self.name!r} reads, {self.input_range}"
        declared = "pixel_range is" if self.range_source == "pixel_range" else "the images are taken to be in"
        if hi - lo > UNIT_SCALE and vmin >= -1.0 and vmax <= 1.0:
            seen = (0, 1) if vmin >= 0 else (-1, 1)
            warnings.warn(f"{argument}: every value lies in [{seen[0]}, {seen[1]}], but {declared} "
                          f"{self.pixel_range}; pass pixel_range={seen} to say how your images are scaled ({effect})",
                          UserWarning, stacklevel=3)
        elif hi - lo <= UNIT_SCALE and vmax > hi + UNIT_SCALE:
            warnings.warn(f"{argument}: values go up to {vmax:g}, but {declared} {self.pixel_range}; pass "
                          f"pixel_range=(0, 255) if your images are 8-bit pixels ({effect})", UserWarning, stacklevel=3)
        elif scale_hint(images, self.pixel_range):  # 16-bit or mean-subtracted (tfxattr.inputs.scale_hint)
            seen, fix = scale_hint(images, self.pixel_range)
            warnings.warn(f"{argument}: {seen}, but {declared} {self.pixel_range}; {fix} ({effect})", UserWarning,
                          stacklevel=3)

    def with_class_names(self, class_names) -> "ModelAdapter":
        """A copy naming the classes ``class_names`` (one per class; shares the model)."""
        names = class_name_list(class_names)
        _check_class_count(names, self.num_classes, self.name)
        twin = copy.copy(self)
        twin.class_names = names
        return twin

    def options(self, **changes) -> ModelOptions:
        """The options this adapter reads the model with (a pixel range declared or seen in the images stays;
        one taken from the model's input range or assumed does not), with ``changes``."""
        own_range = self.range_source in ("pixel_range", "images")
        return ModelOptions(output=self.output, batch_size=self.batch_size, preprocess=self.user_preprocess,
                            weights=self.weights, head=self.head, input_shape=self.input_shape, num_classes=self.units,
                            pixel_range=self.pixel_range if own_range else None, input_range=self.input_range,
                            class_names=self.class_names, precision=self.precision,
                            strategy=self.strategy).replace(**changes)

    def with_options(self, output: Optional[str] = None, batch_size: Optional[int] = None) -> "ModelAdapter":
        """A copy with another ``output`` or ``batch_size`` (shares the model)."""
        if output is None or output == self.output:
            if batch_size is None or batch_size == self.batch_size:
                return self
            positive_int(batch_size, "batch_size")
            twin = copy.copy(self)  # shares the traced functions: batch_size is not part of them
            twin.batch_size = int(batch_size)
            return twin
        return ModelAdapter(self._fn, self.options(output=output, batch_size=batch_size or self.batch_size),
                            name=self.name, keras_model=self.keras_model, keep=self._keep, objective=self.objective)

    def with_strategy(self, strategy) -> "ModelAdapter":
        """A copy whose chunks are split across ``strategy``'s replicas (None: the default device); it
        shares the model and the traced functions."""
        if check_strategy(strategy) is self.strategy:
            return self
        twin = copy.copy(self)
        twin.strategy = strategy
        return twin

    def network_view(self):
        """``(to_network, evaluator)``: the map from pixels to the tensor the network itself sees (the
        preprocessing, then the model's leading Rescaling/Normalization layers), and an evaluator
        of the network from that tensor on. Methods that act "in the model's input space" (GGIG's
        ascent) work there, so normalisation inside the model or in ``preprocess`` is the same."""
        if self._network is None:
            from .layers import leading_preprocessing, split_model

            stem, fn = None, self._fn
            cut = leading_preprocessing(self.keras_model) if self.keras_model is not None else None
            if cut is not None and fn is not None:
                stem, head = split_model(self.keras_model, cut)
                fn = select_output(lambda z: head(z, training=False), None)
            outer = self.preprocess

            def to_network(x):
                x = tf.convert_to_tensor(x, tf.float32)
                x = outer(x) if outer is not None else x
                return tf.cast(stem(x, training=False), tf.float32) if stem is not None else x

            shape = tuple(to_network(tf.zeros((1,) + tuple(s or PROBE_SIZE for s in self.input_shape))).shape[1:])
            if any(s is None for s in self.input_shape[:2]):
                shape = (None, None, shape[-1])
            options = self.options(preprocess=None, weights=None, input_shape=shape, pixel_range=NETWORK_RANGE,
                                   input_range=NETWORK_RANGE, strategy=None)
            network = ModelAdapter(fn, options, name=f"{self.name} (network input)", objective=self.objective)
            self._network = (to_network, network)
        to_network, network = self._network
        return to_network, network.with_strategy(self.strategy)

    def __repr__(self):
        return (f"ModelAdapter({self.name!r}, input_shape={self.input_shape}, classes={self.num_classes}, "
                f"head={self.head!r}, output={self.output!r}, batch_size={self.batch_size})")


def _range_map(source, target) -> Optional[Callable]:
    """The linear map taking ``source`` (low, high) onto ``target``, or None when they are equal or
    ``target`` (the model's input range) is unknown: then images reach the model unchanged."""
    if target is None or tuple(source) == tuple(target):
        return None
    (a, b), (c, d) = source, target
    scale = (d - c) / (b - a)
    return lambda x: (x - a) * scale + c


def _check_class_count(names, classes: int, model: str):
    if names is not None and len(names) != classes:
        raise ValueError(f"class_names has {len(names)} names but model {model!r} has {classes} classes: give one "
                         "name per class, in the order of the model's outputs")


def _compose(first: Optional[Callable], then: Optional[Callable]) -> Optional[Callable]:
    if first is None or then is None:
        return first or then
    return lambda x: then(first(x))

