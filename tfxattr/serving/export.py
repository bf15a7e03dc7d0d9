"""``export(model, path, methods=[...])``: a SavedModel whose signatures compute explanations, and
``explainer_model(model, method)``: the same computation as a callable.

Signatures (loading needs TensorFlow only, not tfxattr):

* ``serving_default``: ``images`` float32 (N,H,W,C) pixels -> ``scores`` (N, classes), the model's
  logits or probabilities (``output``), and ``pixels_ok`` (N,) bool (:func:`pixels_ok`: False for an image
  that cannot be in the recorded ``pixel_range``, e.g. [0, 1] values sent to an 8-bit signature);
* ``explain_<method>`` (``"+"`` written ``"_"``, ``"++"`` written ``"_plus_plus"``: ``explain_ig_idgi``,
  ``explain_gradcam_plus_plus``): ``images`` and ``targets`` int32 (N,) (-1: the top-1 class) ->
  ``attributions`` (N,H,W,C; (N,H,W,1) for layer methods), ``maps`` (N,H,W: ``Explanation.map``'s
  channel reduction, :mod:`tfxattr.reduction`), ``targets`` (the explained classes), ``scores`` (the
  explained value), ``pixels_ok``.

Every signature refuses a NaN or infinite pixel and a wrong image size with a message naming ``images``;
an empty batch gives empty outputs. ``description`` (a JSON string variable) records the model, the
methods and their options, ``pixel_range`` and ``input_range``.
"""
from __future__ import annotations

import json
import os

import tensorflow as tf

from ..batching import chunk_map
from ..checks import did_you_mean, positive_int
from ..inputs import NotExportable
from ..methods import Method, get_method
from ..methods.base import Wrapper, check_architecture, find_spec
from ..models.adapter import UNIT_SCALE
from ..models.build import model_adapter
from ..models.compat import graph_function, traced_per_model
from ..models.options import ModelOptions, takes_model_options
from ..reduction import reduce_channels

SIGNATURE_PREFIX = "explain_"
DEFAULT_SEED = 0  # SmoothGrad noise must be fixed in a served model: the same request, the same map


def signature_name(method: str) -> str:
    """``"ig+idgi"`` -> ``"explain_ig_idgi"``, ``"gradcam++"`` -> ``"explain_gradcam_plus_plus"``."""
    return SIGNATURE_PREFIX + method.replace("++", "_plus_plus").replace("+", "_").replace("-", "_")


class Explainer(tf.Module):
    """The exported object: ``scores(images)`` and one ``explain_<name>(images, targets)`` per method, all
    ``tf.function``s with input signatures; ``description`` holds the methods and options as JSON."""

    def __init__(self, adapter, methods: dict, batch_size: int, seed: int):
        super().__init__(name="tfxattr_explainer")
        if adapter.keras_model is not None:
            self.model = adapter.keras_model  # tracks the weights the functions read
        if adapter._keep is not None:
            self.loaded = adapter._keep
        self.adapter_name = adapter.name
        images = tf.TensorSpec((None,) + tuple(adapter.input_shape), tf.float32, name="images")
        targets = tf.TensorSpec((None,), tf.int32, name="targets")
        classes = adapter.num_classes
        shape = tuple(adapter.input_shape)

        pixel_range = tuple(adapter.pixel_range)

        def scores_of(x):
            with tf.control_dependencies(_image_checks(x, shape)):
                x = tf.identity(x)
            (s,) = chunk_map(lambda rows: (tf.cast(adapter.objective.scores(adapter._raw(rows)), tf.float32),),
                             [tf.float32], tf.shape(x)[0], batch_size, x)
            return s

        def scores(images):
            n, x, _ = _at_least_one(images, None)
            return {"scores": scores_of(x)[:n], "pixels_ok": pixels_ok(images, pixel_range)}

        self.scores = traced_per_model(graph_function(scores, input_signature=[images]))
        self.names = {}
        for key, method in methods.items():
            attribute = _traced_attribute(method, adapter, seed)
            self.names[key] = method.name
            setattr(self, signature_name(key), traced_per_model(graph_function(
                _explain_fn(attribute, scores_of, classes, pixel_range), input_signature=[images, targets])))
        self.description = tf.Variable(json.dumps({
            "model": adapter.name, "output": adapter.output, "batch_size": batch_size, "seed": seed,
            "pixel_range": list(adapter.pixel_range),
            "input_range": None if adapter.input_range is None else list(adapter.input_range),
            "class_names": adapter.class_names,
            "methods": {signature_name(k): {"method": m.name, "options": {o: repr(v) for o, v in m.options.items()}}
                        for k, m in methods.items()}}), trainable=False, name="description")

    def signatures(self) -> dict:
        """Signature name -> concrete function; also tracks the raw ``tf.Variable``s the functions capture
        (Keras 3 tracks its variable wrappers, and TF1-style loaders such as ``saved_model_cli`` and TF
        Serving then cannot find the captured ones, as Keras' own ``ExportArchive`` works around)."""
        out = {"serving_default": self.scores.get_concrete_function()}
        for key in self.names:
            out[signature_name(key)] = getattr(self, signature_name(key)).get_concrete_function()
        seen, captured = set(), []
        for fn in out.values():
            for v in fn.variables:
                if id(v) not in seen:
                    seen.add(id(v))
                    captured.append(v)
        self.captured_variables = captured
        return out


def _image_checks(images, shape):
    """Signature functions do not enforce their input shapes: check every fixed (H, W, C) size, and that
    every pixel is a number (a NaN would otherwise surface as a failure deep inside a method)."""
    text = "(N, " + ", ".join("any" if s is None else str(s) for s in shape) + ")"
    return [tf.debugging.assert_equal(tf.shape(images)[axis + 1], size,
                                      message=f"images must be float32 pixels of shape {text} for this model")
            for axis, size in enumerate(shape) if size is not None] + [
        tf.debugging.assert_all_finite(images, "images must be finite pixels: a NaN or infinite value was sent")]


def pixels_ok(images, pixel_range):
    """(N,) bool: each image can be in the served ``pixel_range`` (recorded in ``description``). False for
    an image whose values all lie in [-1, 1] while the range spans 0..255 (images scaled to [0, 1] sent
    to an 8-bit signature), or that goes past the range by more than its width (16-bit values): the
    checks ``ModelAdapter.check_pixels`` warns about, returned as a flag since a served model cannot warn."""
    lo, hi = (float(v) for v in pixel_range)
    flat = tf.reshape(images, [tf.shape(images)[0], -1])
    vmin, vmax = tf.reduce_min(flat, 1), tf.reduce_max(flat, 1)
    constant = tf.equal(vmin, vmax)  # a constant image says nothing about the scale
    unit = (vmin >= -1.0) & (vmax <= 1.0)
    too_small = unit if hi - lo > UNIT_SCALE else tf.zeros_like(unit)
    outside = (vmin < lo - (hi - lo)) | (vmax > hi + (hi - lo))
    return constant | ~(too_small | outside)


def _at_least_one(images, targets):
    """``(n, images, targets)`` with one zero image (and class 0) in place of an empty batch: the methods'
    chunk loops need a first chunk; the outputs are cut back to the ``n`` rows."""
    n = tf.shape(images)[0]
    one = tf.zeros(tf.concat([[1], tf.shape(images)[1:]], 0), images.dtype)
    x = tf.cond(n > 0, lambda: images, lambda: one)
    if targets is not None:
        targets = tf.cond(n > 0, lambda: targets, lambda: tf.zeros([1], targets.dtype))
    return n, x, targets


def _traced_attribute(method: Method, adapter, seed: int):
    """``(images, targets) -> attributions``: the method's own ``attribute`` (the code explain() runs),
    traced inside the signature's ``tf.function``; its chunk loops become ``tf.while_loop`` loops."""
    def attribute(images, targets):
        return tf.convert_to_tensor(method.attribute(adapter, images, targets, progress=False, seed=seed),
                                    tf.float32)
    return attribute


def _explain_fn(attribute, scores_of, classes: int, pixel_range):
    def explain(images, targets):
        checks = [
            tf.debugging.assert_equal(tf.shape(targets)[0], tf.shape(images)[0],
                                      message="targets must hold one class per image (the length of images)"),
            tf.debugging.assert_greater_equal(targets, -1, message="targets must be -1 (top-1) or a class index"),
            tf.debugging.assert_less(targets, classes, message=f"targets must be below the {classes} classes"),
        ]
        with tf.control_dependencies(checks):
            n, x, t = _at_least_one(images, targets)
            scores = scores_of(x)
        explained = tf.where(t < 0, tf.argmax(scores, axis=-1, output_type=tf.int32), t)
        attr = attribute(x, explained)
        return {"attributions": attr[:n], "maps": reduce_channels(attr)[:n], "targets": explained[:n],
                "scores": tf.gather(scores, explained, axis=1, batch_dims=1)[:n],
                "pixels_ok": pixels_ok(images, pixel_range)}
    return explain


def resolve_methods(methods, steps=None, options=None) -> dict:
    """Signature key -> configured Method. ``methods``: names or specs (``"ig:rule=midpoint"``), Method
    instances, or a dict {key: name/spec/Method}. ``steps`` and ``options`` go to every method (or the method
    a wrapper such as SmoothGrad wraps) that takes them; an option no method takes is an error."""
    from ..specs import parse_spec

    options = dict(options or {})
    if steps is not None:
        positive_int(steps, "steps")
        options["steps"] = steps
    if isinstance(methods, (str, Method)):
        methods = [methods]
    if not isinstance(methods, dict):
        if not methods:
            raise ValueError("methods must name at least one method, e.g. methods=['ig+idgi']")
        items = []
        for item in methods:
            key = item.name if isinstance(item, Method) else parse_spec(item, "methods").name.lower()
            items.append((key, item))
        keys = [k for k, _ in items]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"methods name {dup} more than once; pass a dict {{signature key: method spec}} to "
                             "export one method with several option sets")
        methods = dict(items)
    used, out = set(), {}
    for key, item in methods.items():
        if isinstance(item, Method):
            out[key] = item
            continue
        spec = parse_spec(item, "methods")
        name = spec.name.lower()
        found = find_spec(name)  # unknown names fail here, with "did you mean"
        if found.cls.not_exportable:
            raise NotExportable(f"method {name!r} cannot be exported: {found.cls.not_exportable}")
        defaults = found.defaults
        given = dict(spec.options)
        wrapper = issubclass(found.cls, Wrapper)
        wrapped_given = dict(given.get("inner_options") or {}) if wrapper else {}
        wrapped_defaults = find_spec(given.get("inner", defaults["inner"])).defaults if wrapper else {}
        for opt, value in options.items():
            if opt in defaults:
                given.setdefault(opt, value)
                used.add(opt)
            elif opt in wrapped_defaults:  # SmoothGrad passes it to the method it wraps
                wrapped_given.setdefault(opt, value)
                used.add(opt)
        if wrapped_given:
            given["inner_options"] = wrapped_given
        out[key] = get_method(name, **given)
    unused = sorted(set(options) - used)
    if unused:
        known = {o for k in out.values() for o in k.options}
        raise ValueError(f"option(s) {unused} are taken by none of the methods {list(out)}"
                         f"{''.join(did_you_mean(u, known) for u in unused)}")
    return out


def not_exportable() -> dict:
    """Registered name -> why it has no graph form, for every method that declares one."""
    from ..methods import METHODS

    return {name: spec.cls.not_exportable for name, spec in sorted(METHODS.items()) if spec.cls.not_exportable}


def _check_methods(methods: dict):
    """Refuse, before anything is traced, a method (or the base of a wrapper) that declares no graph form."""
    for method in methods.values():
        reason = method.export_refusal()
        if reason:
            raise NotExportable(f"method {method.name!r} cannot be exported: {reason}")


def _explainer(model, methods, steps, seed, options, owner) -> Explainer:
    model_options, options = ModelOptions.take(options, owner)
    if model_options.strategy is not None:
        raise ValueError(f"{owner}: strategy cannot be exported: a served model runs each call on one device "
                         "(TF Serving places it); pass strategy=None")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    resolved = resolve_methods(methods, steps, options)
    _check_methods(resolved)
    adapter = model_adapter(model, model_options)
    for method in resolved.values():  # a CNN-only method on a ViT is refused before anything is traced
        check_architecture(method, adapter)
    return Explainer(adapter, resolved, model_options.batch_size, seed)


@takes_model_options(others=True)
def export(model, path, methods=("ig+idgi",), steps=None, *, seed: int = DEFAULT_SEED, **options) -> str:
    """Write a SavedModel to ``path`` serving ``model``'s scores and explanations by ``methods``.

    ``model``: anything :func:`tfxattr.as_model` accepts (preprocessing goes inside the graph).
    ``steps``, ``options``: for every method that takes them. ``batch_size`` bounds the rows per model
    call in the graph. ``seed``: SmoothGrad's noise seed. Returns ``path``. A method without a graph
    form raises :class:`~tfxattr.inputs.NotExportable` before anything is written.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"path {os.fspath(path)!r} is an existing file; a SavedModel is a directory: give a new "
                         "directory (or an existing one to write into)")
    explainer = _explainer(model, methods, steps, seed, options, "export()")
    path = os.fspath(path)
    tf.saved_model.save(explainer, path, signatures=explainer.signatures())
    return path


@takes_model_options(others=True)
def explainer_model(model, method="ig+idgi", steps=None, *, seed: int = DEFAULT_SEED, **options):
    """``method`` on ``model`` as a callable ``(images, targets) -> {"attributions", "maps", "targets",
    "scores"}`` (a ``tf.function`` on an :class:`Explainer`, usable in ``tf.data.Dataset.map`` and Keras
    code); the exact computation of the ``explain_<method>`` signature of :func:`export`."""
    explainer = _explainer(model, {"method": method}, steps, seed, options, "explainer_model()")
    fn = getattr(explainer, signature_name("method"))
    fn.explainer = explainer  # keeps the module (and the model's weights) alive with the callable
    return fn
