"""Model adapters: what scalar f_c(x) is explained, and its gradient, batched.

Every model a user can hand us (anything a model source recognises: ``tfxattr/models/sources.py``)
becomes one :class:`ModelAdapter`. Preprocessing is composed *inside* the differentiable function,
so images, baselines and attributions all live in the user's pixel space.

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
from typing import Callable, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from .. import checks
from ..batching import chunks, spans
from ..checks import did_you_mean, one_of, positive_int
from ..inputs import CONVENTIONAL_RANGES, image_range, scale_hint
from . import compat, sources
from .devices import check_strategy, run_split
from .objective import HEADS, OUTPUTS, Objective, objective_for
from .precision import PRECISIONS, reduced_precision_clone
from .sources import WEIGHT_NONE

# adapters already built for a model object live on the object (attribute below), so repeated
# explain() calls do not re-trace the model and the adapters die with the model
_CACHE_ATTR = "_tfxattr_adapters"
DEFAULT_BATCH_SIZE = 32
# the images' range assumed when neither the images' range nor the model's is declared (8-bit pixels); it only
# places baselines and figures: with the model's input range unknown, images are never remapped
DEFAULT_PIXEL_RANGE = (0.0, 255.0)
# where the pixel range came from (ModelAdapter.range_source)
RANGE_SOURCES = ("pixel_range", "input_range", "images", "assumed")
# the head probe: a few random images at the model's size (PROBE_SIZE where the size is free)
PROBE_IMAGES = 2
PROBE_SIZE = 32
# float32 softmax rows sum to 1 within ~1e-6; 1e-3 also accepts float16 heads, and no logit vector
# of a trained model is that close to a probability vector on random images
SOFTMAX_SUM_TOLERANCE = 1e-3
SOFTMAX_NEGATIVE_TOLERANCE = 1e-6
# channels-first detection: a leading axis this small in front of two larger ones is a channel axis
MAX_CHANNELS = 4
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

    def __init__(self, fn: Callable, input_shape: Sequence[Optional[int]], num_classes: int,
                 output: str = "logit", preprocess: Optional[Callable] = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, pixel_range=None,
                 ends_in_softmax: Optional[bool] = None, name: str = "model",
                 class_names: Optional[Sequence[str]] = None, keras_model=None, weights: Optional[str] = None,
                 keep=None, head: Optional[str] = None, input_range=None, objective: Optional[Objective] = None,
                 precision: str = "float32"):
        one_of(output, "output", OUTPUTS)
        self.precision = one_of(precision, "precision", PRECISIONS)
        positive_int(batch_size, "batch_size")
        if len(input_shape) != 3:
            raise ValueError(f"input_shape must be (H, W, C), got {tuple(input_shape)}")
        self._fn = fn
        self.input_shape = tuple(input_shape)
        self.units = int(num_classes)
        self.user_preprocess = preprocess
        self.batch_size = int(batch_size)
        self.input_range = None if input_range is None else checks.pixel_range(input_range, "input_range")
        if pixel_range is not None:
            self.pixel_range, self.range_source = checks.pixel_range(pixel_range), "pixel_range"
        elif self.input_range is not None:
            self.pixel_range, self.range_source = self.input_range, "input_range"
        else:
            self.pixel_range, self.range_source = DEFAULT_PIXEL_RANGE, "assumed"
        self.preprocess = _compose(_range_map(self.pixel_range, self.input_range), preprocess)
        self.name = name
        self.class_names = class_name_list(class_names)
        self.keras_model = keras_model
        self.weights = weights
        self._keep = keep  # trackable objects (a loaded SavedModel) that must live as long as the adapter
        self._network = None
        if objective is None:
            if head is None:
                head = "softmax" if ends_in_softmax else "softmax_logits" if ends_in_softmax is False \
                    else self._probe_head()
            objective = objective_for(head, output, self.units)
        self.objective = objective.with_output(output)
        self.num_classes = self.objective.classes(self.units)
        _checkclass_name_list(self.class_names, self.num_classes, name)
        self._warn_explained_probabilities()
        spec = tf.TensorSpec((None,) + self.input_shape, tf.float32)
        # one trace per adapter (fixed signatures): compat.traced_per_model keeps TensorFlow from calling
        # several models explained in a row a retracing of one function
        self._scores_fn = compat.traced_per_model(tf.function(lambda x: self.objective.scores(self._raw(x)),
                                                              input_signature=[spec]))
        self._probabilities_fn = compat.traced_per_model(tf.function(
            lambda x: self.objective.probabilities(self._raw(x)), input_signature=[spec]))
        self._both_fn = compat.traced_per_model(tf.function(self._scores_and_probabilities, input_signature=[spec]))
        self._vg_fn = compat.traced_per_model(tf.function(
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

    def withclass_name_list(self, class_names) -> "ModelAdapter":
        """A copy naming the classes ``class_names`` (one per class; shares the model)."""
        names = class_name_list(class_names)
        _checkclass_name_list(names, self.num_classes, self.name)
        twin = copy.copy(self)
        twin.class_names = names
        return twin

    def with_options(self, output: Optional[str] = None, batch_size: Optional[int] = None) -> "ModelAdapter":
        """A copy with another ``output`` or ``batch_size`` (shares the model)."""
        if output is None or output == self.output:
            if batch_size is None or batch_size == self.batch_size:
                return self
            positive_int(batch_size, "batch_size")
            twin = copy.copy(self)  # shares the traced functions: batch_size is not part of them
            twin.batch_size = int(batch_size)
            return twin
        return ModelAdapter(self._fn, self.input_shape, self.units, output=output or self.output,
                            preprocess=self.user_preprocess, batch_size=batch_size or self.batch_size,
                            pixel_range=None if self.range_source in ("input_range", "assumed") else self.pixel_range,
                            input_range=self.input_range, name=self.name,
                            class_names=self.class_names, keras_model=self.keras_model, weights=self.weights,
                            keep=self._keep, objective=self.objective,
                            precision=self.precision).with_strategy(self.strategy)

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
                fn = _select_output(lambda z: head(z, training=False), None)
            outer = self.preprocess

            def to_network(x):
                x = tf.convert_to_tensor(x, tf.float32)
                x = outer(x) if outer is not None else x
                return tf.cast(stem(x, training=False), tf.float32) if stem is not None else x

            shape = tuple(to_network(tf.zeros((1,) + tuple(s or PROBE_SIZE for s in self.input_shape))).shape[1:])
            if any(s is None for s in self.input_shape[:2]):
                shape = (None, None, shape[-1])
            network = ModelAdapter(fn, shape, self.units, output=self.output, batch_size=self.batch_size,
                                   pixel_range=NETWORK_RANGE, input_range=NETWORK_RANGE,
                                   name=f"{self.name} (network input)",
                                   class_names=self.class_names, objective=self.objective, precision=self.precision)
            self._network = (to_network, network)
        to_network, network = self._network
        return to_network, network.with_strategy(self.strategy)

    def _probe_head(self) -> str:
        """Guess the head of a model without layers: probabilities on random images (rows of a
        softmax sum to one; one unit in [0, 1] is a sigmoid), else logits (one unit: a binary logit)."""
        h, w, c = (s if s is not None else PROBE_SIZE for s in self.input_shape)
        rng = np.random.default_rng(0)
        lo, hi = self.pixel_range
        probe = tf.constant(rng.uniform(lo, hi, (PROBE_IMAGES, h, w, c)), tf.float32)
        out = tf.cast(self._raw(probe), tf.float32).numpy()
        in_unit = bool(np.all(out >= -SOFTMAX_NEGATIVE_TOLERANCE) and np.all(out <= 1 + SOFTMAX_NEGATIVE_TOLERANCE))
        if self.units == 1:
            return "sigmoid" if in_unit else "sigmoid_logits"
        return "softmax" if in_unit and np.allclose(out.sum(-1), 1.0, atol=SOFTMAX_SUM_TOLERANCE) else "softmax_logits"

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


def class_name_list(names) -> Optional[list]:
    """``names`` as a list of strings: a sequence, or a comma-separated string; None stays None."""
    if names is None:
        return None
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",")]
    try:
        names = [str(n) for n in names]
    except TypeError:
        raise ValueError(f"class_names must be a sequence of names, got {names!r}") from None
    if not all(n.strip() for n in names):
        raise ValueError(f"class_names has an empty name: {names!r}")
    return names


def _checkclass_name_list(names, classes: int, model: str):
    if names is not None and len(names) != classes:
        raise ValueError(f"class_names has {len(names)} names but model {model!r} has {classes} classes: give one "
                         "name per class, in the order of the model's outputs")


def _compose(first: Optional[Callable], then: Optional[Callable]) -> Optional[Callable]:
    if first is None or then is None:
        return first or then
    return lambda x: then(first(x))


# ---------------------------------------------------------------------------------------
def as_model(model, output: str = "logit", preprocess: Optional[Callable] = None,
             batch_size: int = DEFAULT_BATCH_SIZE, input_shape=None, num_classes=None,
             pixel_range=None, weights="imagenet", output_index=None, head: Optional[str] = None,
             precision: str = "float32", strategy=None, input_range=None, class_names=None) -> ModelAdapter:
    """Turn ``model`` into a :class:`ModelAdapter`.

    ``model``: a ModelAdapter or anything a model source recognises (``tfxattr models``).
    ``preprocess`` is applied inside the gradient (a Keras application name brings its own
    ``preprocess_input``). ``pixel_range``: the range of your images (default: the model's input range).
    ``input_range``: the range the model reads (with ``preprocess``, what ``preprocess`` reads); by
    default what the model declares: Keras applications and the demo models read 0..255, a leading
    ``Rescaling`` or adapted ``Normalization`` layer implies its range. When nobody declares it, it is
    unknown and images reach the model unchanged (``pixel_range`` then only places baselines and
    figures). Both known and different: images are mapped linearly from ``pixel_range`` onto
    ``input_range`` inside the gradient. ``class_names``: one name per class (a sequence, or one
    comma-separated string), so targets can be given by name; by default the source's (Keras
    applications, demo models) or the Keras model's ``class_names`` attribute. ``output_index`` picks one output of a
    multi-output model: an int, an output key of a dict-output model, or an output layer name.
    ``head``: what the raw output is (detected; one of ``HEADS``). ``input_shape`` (H, W, C) for
    models that do not say it (subclassed models, Sequentials built without an input).
    ``precision``: "float32", or "bfloat16" / "float16" to compute gradients on a mixed-precision copy
    of a Keras model (:mod:`tfxattr.models.precision`). ``strategy``: a ``tf.distribute.Strategy``
    splitting each chunk across its replicas (:meth:`ModelAdapter.with_strategy`).
    """
    check_strategy(strategy)
    if head is not None:
        one_of(head, "head", HEADS)
    one_of(precision, "precision", PRECISIONS)
    pixel_range = None if pixel_range is None else checks.pixel_range(pixel_range)
    input_range = None if input_range is None else checks.pixel_range(input_range, "input_range")
    class_names = class_name_list(class_names)
    key = (output, preprocess, output_index, pixel_range, input_range,
           None if class_names is None else tuple(class_names),
           None if input_shape is None else tuple(input_shape), num_classes, head, precision)
    if isinstance(model, ModelAdapter) or sources.find_source(model).name != "keras_model":
        adapter = _build_adapter(model, output, preprocess, batch_size, input_shape, num_classes, pixel_range,
                                 weights, output_index, head, precision, input_range, class_names)
        return adapter if strategy is None else adapter.with_strategy(strategy)
    cache = getattr(model, _CACHE_ATTR, None)
    if cache is None:
        cache = {}
        try:
            object.__setattr__(model, _CACHE_ATTR, cache)  # bypasses Keras' attribute tracking
        except (AttributeError, TypeError):  # objects without a __dict__: no cache
            pass
    if key not in cache:
        cache[key] = _build_adapter(model, output, preprocess, batch_size, input_shape, num_classes, pixel_range,
                                    weights, output_index, head, precision, input_range, class_names)
    adapter = cache[key].with_options(batch_size=batch_size)
    return adapter if strategy is None else adapter.with_strategy(strategy)


def _build_adapter(model, output, preprocess, batch_size, input_shape, num_classes, pixel_range, weights,
                   output_index, head, precision="float32", input_range=None, class_names=None) -> ModelAdapter:
    if isinstance(model, ModelAdapter):
        changed = [name for name, differs in (("preprocess", preprocess is not None),
                                              ("precision", precision != model.precision),
                                              ("input_range", input_range not in (None, model.input_range)))
                   if differs]
        if changed:
            raise ValueError(f"{' and '.join(changed)} cannot be changed on an existing ModelAdapter; pass the raw "
                             "model")
        adapter = model.with_options(output=output, batch_size=batch_size)
        return adapter if class_names is None else adapter.withclass_name_list(class_names)
    loaded = sources.load(model, weights)
    preprocess = preprocess or loaded.preprocess
    input_shape = input_shape or loaded.input_shape
    input_range = input_range or loaded.input_range
    keras_model = None
    if sources.find_source(loaded.model).name == "keras_model":
        keras_model = loaded.model
        _check_keras_input(keras_model, loaded.name)
        if precision != "float32":
            keras_model = reduced_precision_clone(keras_model, precision)
        fn, shape, units = _keras_fn(keras_model, output_index)
        input_shape = input_shape or shape
        num_classes = num_classes or units
        head = head or loaded.head or _keras_head(keras_model, num_classes, output_index)
        input_range = input_range or (_implied_range(keras_model) if preprocess is None else None)
    else:
        if precision != "float32":
            raise ValueError(f"precision={precision!r} needs a keras.Model (it computes on a mixed-precision copy); "
                             f"{loaded.name!r} is a SavedModel or a callable: use precision='float32'")
        fn = _select_output(loaded.model, output_index)
        head = head or loaded.head
    if input_shape is None:
        raise ValueError(f"the input shape of {loaded.name!r} is unknown: pass input_shape=(H, W, C) to explain "
                         "(or as_model)")
    input_shape = tuple(input_shape)
    _check_channels_last(input_shape, loaded.name)
    if num_classes is None or keras_model is None:  # a callable is probed once: it must return tensors
        num_classes = num_classes or _probe_units(fn, input_shape, preprocess, input_range, loaded.name)
    return ModelAdapter(fn, input_shape, num_classes, output=output, preprocess=preprocess,
                        batch_size=batch_size, pixel_range=pixel_range, input_range=input_range, head=head,
                        name=loaded.name, class_names=class_names or loaded.class_names, keras_model=keras_model,
                        weights=loaded.weights, keep=loaded.keep, precision=precision)


def _check_keras_input(model, name):
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) > 1:
        raise ValueError(f"model {name!r} takes {len(inputs)} inputs; tfxattr explains models with one image input")
    dtype = str(getattr(inputs[0], "dtype", "float32")) if inputs else "float32"
    if not any(kind in dtype for kind in ("float", "bfloat")):
        raise ValueError(f"model {name!r} takes {dtype} inputs: gradients need float inputs. Give it a float "
                         "input (cast inside the model after the input layer)")


def _check_channels_last(shape, name):
    c0, h, w = shape
    if c0 is not None and c0 <= MAX_CHANNELS and (h is None or h > MAX_CHANNELS) and (w is None or w > MAX_CHANNELS):
        raise ValueError(f"model {name!r} takes channels-first images (N, C, H, W) = (N, {c0}, {h}, {w}); "
                         "tfxattr needs channels-last images (N, H, W, C): build the model with "
                         "data_format='channels_last' (the Keras default) or transpose inside it")


def _keras_fn(model, output_index):
    try:
        in_shape = tuple(model.inputs[0].shape[1:])
    except (AttributeError, IndexError, TypeError, ValueError):
        in_shape = None
    fn = _select_output(lambda x: model(x, training=False), output_index, model)
    units = None
    outputs = getattr(model, "outputs", None)
    if outputs:
        out = outputs[_output_position(model, output_index)]
        if len(out.shape) != 2:
            raise ValueError(f"the model output must be (N, classes), got shape {tuple(out.shape)}; "
                             "pass output_index for a multi-output model or wrap the model")
        units = out.shape[-1]
    if in_shape is not None and any(s is None for s in in_shape[:2]):
        in_shape = (None, None, in_shape[2])
    return fn, in_shape, units


def _output_names(model) -> dict:
    """Selector -> position in the flattened outputs (``keras.tree.flatten`` order, = ``model.outputs``):
    dict keys, output layer names, and positions."""
    names = list(getattr(model, "output_names", None) or [])
    out = {name: i for i, name in enumerate(names)}
    structure = getattr(model, "output", None)
    if isinstance(structure, dict):
        out.update({key: i for i, key in enumerate(sorted(structure))})
    return out


def _output_position(model, output_index) -> int:
    outputs = getattr(model, "outputs", None) or []
    n = len(outputs) or 1
    names = _output_names(model)
    if output_index is None:
        if n > 1:
            raise ValueError(f"model has {n} outputs ({sorted(names)}); pass output_index=<int, output key or "
                             "output layer name> to choose one")
        return 0
    if isinstance(output_index, str):
        if output_index not in names:
            hint = did_you_mean(output_index, names)
            raise ValueError(f"output_index {output_index!r} is not an output of the model{hint}; "
                             f"outputs: {sorted(names)} or an int in [0, {n})")
        return names[output_index]
    if isinstance(output_index, bool) or not isinstance(output_index, (int, np.integer)) \
            or not 0 <= output_index < n:
        raise ValueError(f"output_index must be an output key or name ({sorted(names)}) or an int in [0, {n}), "
                         f"got {output_index!r}")
    return int(output_index)


def _select_output(fn, output_index, model=None):
    """``fn`` followed by picking one output. Keras models: resolved once from the model's outputs;
    other callables: at call time from what they return (a dict key, or a list/tuple position)."""
    position = _output_position(model, output_index) if model is not None else None

    def select(x):
        out = fn(x)
        if not isinstance(out, (dict, list, tuple)):
            return out
        flat = [out[k] for k in sorted(out)] if isinstance(out, dict) else list(out)
        if position is not None:
            return flat[position]
        if output_index is None:
            if len(flat) != 1:
                keys = sorted(out) if isinstance(out, dict) else list(range(len(flat)))
                raise ValueError(f"model returns {len(flat)} outputs {keys}; pass output_index=<key or int>")
            return flat[0]
        if isinstance(out, dict) and isinstance(output_index, str):
            if output_index not in out:
                raise ValueError(f"output_index {output_index!r} is not an output of the model"
                                 f"{did_you_mean(output_index, out)}; outputs: {sorted(out)}")
            return out[output_index]
        if isinstance(output_index, bool) or not isinstance(output_index, (int, np.integer)) \
                or not 0 <= output_index < len(flat):
            raise ValueError(f"output_index must be an int in [0, {len(flat)}) or an output key, got {output_index!r}")
        return flat[int(output_index)]
    return select


# operations (layers or keras.ops calls) whose output is a probability vector, by class name
PROBABILITY_OPS = {"Softmax": "softmax", "Sigmoid": "sigmoid"}
# layers that compute logits when they have no (or a linear) activation
LINEAR_LAYERS = ("Dense", "EinsumDense", "Conv1D", "Conv2D", "Conv3D")


def _keras_head(model, units, output_index=None) -> Optional[str]:
    """The head read from the layer or op that produces the selected output (None: unknown, probe it).

    The output chosen by ``output_index`` is followed back to its producer (through nested models): a
    ``Softmax`` layer or ``keras.ops.softmax`` call, a layer with a softmax/sigmoid activation, or a linear
    Dense/Conv layer (logits). Subclassed models have no graph to follow: their head is probed."""
    outputs = getattr(model, "outputs", None)
    if not outputs:
        return None
    found = compat.producer(outputs[_output_position(model, output_index)])
    while found is not None:
        op, index = found
        inner = getattr(op, "outputs", None) if isinstance(op, keras.Model) else None
        if not inner:
            break
        found = compat.producer(inner[index])  # a nested model: its own producer of that output
    if found is None:
        return None
    op = found[0]
    kind = type(op).__name__
    if kind in PROBABILITY_OPS:
        return PROBABILITY_OPS[kind]
    act = getattr(getattr(op, "activation", None), "__name__", None)
    if act in ("softmax", "sigmoid"):
        return act
    if (act == "linear" and kind == "Activation") or (kind in LINEAR_LAYERS and act in (None, "linear")):
        return "sigmoid_logits" if units == 1 else "softmax_logits"
    return None


def _implied_range(model) -> Optional[tuple]:
    """The input range a model's first layer implies, or None (unknown).

    ``Rescaling(1/255)`` reads 0..255 into [0, 1] and ``Rescaling(1/127.5, offset=-1)`` 0..255 into
    [-1, 1] (scale s, offset 0 or -1: 0..1/s or 0..2/s). An adapted ``Normalization`` (mean m, variance v
    per channel) reads the conventional range (:data:`~tfxattr.inputs.CONVENTIONAL_RANGES`) its data came
    from: the smallest one holding every channel's m +- sqrt(v), if sqrt(v) is at least
    :data:`MIN_SPREAD` of its width (data that narrow says nothing about the scale).
    """
    layers = [layer for layer in getattr(model, "layers", []) if not isinstance(layer, keras.layers.InputLayer)]
    if not layers:
        return None
    if isinstance(layers[0], keras.layers.Normalization):
        return _normalization_range(layers[0])
    if not isinstance(layers[0], keras.layers.Rescaling):
        return None
    scale, offset = np.asarray(layers[0].scale, np.float64), np.asarray(layers[0].offset, np.float64)
    if scale.size != 1 or offset.size != 1 or float(scale) <= 0:
        return None
    scale, offset = float(scale), float(offset)
    if offset == 0.0:
        return (0.0, 1.0 / scale)
    if offset == -1.0:
        return (0.0, 2.0 / scale)
    return None


# an adapted Normalization names a conventional range only if its data spread over this fraction of it
MIN_SPREAD = 0.1


def _normalization_range(layer) -> Optional[tuple]:
    if getattr(layer, "invert", False):
        return None
    try:
        mean = np.asarray(keras_value(layer.mean), np.float64).ravel()
        std = np.sqrt(np.asarray(keras_value(layer.variance), np.float64).ravel())
    except (AttributeError, TypeError, ValueError):  # not adapted, or built without statistics
        return None
    if mean.size == 0 or not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)):
        return None
    for lo, hi in CONVENTIONAL_RANGES:
        if np.all(mean - std >= lo) and np.all(mean + std <= hi) and np.all(std >= MIN_SPREAD * (hi - lo)):
            return (lo, hi)
    return None


def keras_value(x):
    return x.numpy() if hasattr(x, "numpy") else x


def _probe_units(fn, input_shape, preprocess, input_range, name="model"):
    """The output width of ``fn`` on one constant image; a model that does not return tensors is refused."""
    h, w, c = (s if s is not None else PROBE_SIZE for s in input_shape)
    x = tf.fill((1, h, w, c), float((input_range or DEFAULT_PIXEL_RANGE)[0]))
    if preprocess is not None:
        x = preprocess(x)
    out = fn(x)
    if not tf.is_tensor(out):
        raise TypeError(f"model {name!r} returned a {type(out).__module__}.{type(out).__name__}: the callable must "
                        "return TensorFlow tensors, computed with TensorFlow ops from its input, so tfxattr can "
                        "differentiate and trace it (return model(x), not model.predict(x) or np.asarray(...))")
    if len(out.shape) != 2:
        raise ValueError(f"the model output must be (N, classes), got shape {tuple(out.shape)}")
    return int(out.shape[-1])
