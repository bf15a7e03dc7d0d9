"""``as_model``: any model a source recognises -> one :class:`~tfxattr.models.adapter.ModelAdapter`.

The source loads the model (:mod:`tfxattr.models.sources`); what the options leave open is read from the
model (:mod:`tfxattr.models.introspect`): its input shape, output width, head and input range. The adapter of
a Keras model object is built once per set of options and kept on the object, so repeated ``explain()``
calls do not re-trace the model, and the adapters die with the model.
"""
from __future__ import annotations

from . import sources
from .adapter import DEFAULT_PIXEL_RANGE, ModelAdapter
from .introspect import (
    check_channels_last,
    check_keras_input,
    implied_range,
    keras_head,
    keras_output_fn,
    probe_units,
    select_output,
)
from .layers.graph import model_cache
from .options import DEFAULT_BATCH_SIZE, ModelOptions, takes_model_options
from .precision import FULL, reduced_precision_clone


@takes_model_options()
def as_model(model, **options) -> ModelAdapter:
    """Turn ``model`` into a :class:`ModelAdapter`.

    ``model``: a ModelAdapter or anything a model source recognises (``tfxattr models``: keras.Model,
    Keras application name, "demo", SavedModel directory, .keras file, callable). Two ranges, two
    options: ``pixel_range``, how your images are scaled, and ``input_range``, what the model reads (with
    ``preprocess``, what ``preprocess`` reads). Both known and different: images are mapped linearly from
    one onto the other inside the gradient; the model's range unknown: images reach it unchanged and
    ``pixel_range`` only places baselines and figures. ``class_names`` default to the source's (Keras
    applications, demo models) or the Keras model's ``class_names`` attribute. ``precision`` computes on a
    mixed-precision copy of a Keras model (:mod:`tfxattr.models.precision`); ``strategy``: see
    :meth:`ModelAdapter.with_strategy`. An existing ModelAdapter takes another ``output``, ``batch_size``,
    ``class_names`` or ``strategy``.
    """
    return model_adapter(model, ModelOptions.of(options, "as_model()"))


def model_adapter(model, options: ModelOptions) -> ModelAdapter:
    """:func:`as_model` with checked options (the doors that read their own keywords call this)."""
    if isinstance(model, ModelAdapter) or sources.find_source(model).name != "keras_model":
        adapter = _build(model, options.replace(strategy=None))
    else:
        per_model = model_cache(model).setdefault("adapters", {})
        # what the adapter is traced for: the batch size, the weights (the object has its own) and the strategy
        # only change a copy of it
        key = options.replace(batch_size=DEFAULT_BATCH_SIZE, weights=None, strategy=None)
        if key not in per_model:
            per_model[key] = _build(model, options.replace(strategy=None))
        adapter = per_model[key].with_options(batch_size=options.batch_size)
    return adapter if options.strategy is None else adapter.with_strategy(options.strategy)


def _build(model, options: ModelOptions) -> ModelAdapter:
    if isinstance(model, ModelAdapter):
        return _reuse(model, options)
    loaded = sources.load(model, options.weights)
    preprocess = options.preprocess or loaded.preprocess
    input_shape = options.input_shape or loaded.input_shape
    input_range = options.input_range or loaded.input_range
    num_classes, head, keras_model = options.num_classes, options.head or loaded.head, None
    if sources.find_source(loaded.model).name == "keras_model":
        keras_model = loaded.model
        check_keras_input(keras_model, loaded.name)
        if options.precision != FULL:
            keras_model = reduced_precision_clone(keras_model, options.precision)
        fn, shape, units = keras_output_fn(keras_model, options.output_index)
        input_shape = input_shape or shape
        num_classes = num_classes or units
        head = head or keras_head(keras_model, num_classes, options.output_index)
        input_range = input_range or (implied_range(keras_model) if preprocess is None else None)
    else:
        if options.precision != FULL:
            raise ValueError(f"precision={options.precision!r} needs a keras.Model (it computes on a mixed-precision "
                             f"copy); {loaded.name!r} is a SavedModel or a callable: use precision='float32'")
        fn = select_output(loaded.model, options.output_index)
    if input_shape is None:
        raise ValueError(f"the input shape of {loaded.name!r} is unknown: pass input_shape=(H, W, C) to explain "
                         "(or as_model)")
    input_shape = tuple(input_shape)
    check_channels_last(input_shape, loaded.name)
    if num_classes is None or keras_model is None:  # a callable is probed once: it must return tensors
        num_classes = num_classes or probe_units(fn, input_shape, preprocess, (input_range or DEFAULT_PIXEL_RANGE)[0],
                                                 loaded.name)
    resolved = options.replace(preprocess=preprocess, input_shape=input_shape, num_classes=num_classes, head=head,
                               input_range=input_range, class_names=options.class_names or loaded.class_names,
                               weights=loaded.weights)
    return ModelAdapter(fn, resolved, name=loaded.name, keras_model=keras_model, keep=loaded.keep)


def _reuse(adapter: ModelAdapter, options: ModelOptions) -> ModelAdapter:
    """An existing adapter with another ``output``, ``batch_size`` or ``class_names``; the options that would
    need the raw model are refused."""
    changed = [name for name, differs in (("preprocess", options.preprocess is not None),
                                          ("precision", options.precision != adapter.precision),
                                          ("input_range", options.input_range not in (None, adapter.input_range)))
               if differs]
    if changed:
        raise ValueError(f"{' and '.join(changed)} cannot be changed on an existing ModelAdapter; pass the raw "
                         "model")
    adapter = adapter.with_options(output=options.output, batch_size=options.batch_size)
    return adapter if options.class_names is None else adapter.with_class_names(options.class_names)
