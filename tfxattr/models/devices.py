"""Devices: one chunk of rows split across the replicas of a ``tf.distribute.Strategy``.

The adapter owns the strategy (``as_model(..., strategy=)``, ``explain(..., strategy=)``); every compiled
chunk function it runs, and those of the layer chain (Grad-CAM, IIA), go through :func:`run_split`: the
chunk's rows are cut into one contiguous slice per replica, each replica runs the same function on its
slice, and the outputs are concatenated in replica order. Every row is computed as on one device, so the
results are the single-device ones; memory per device is bounded by ``batch_size / replicas`` rows.

:func:`mirrored_strategy` builds what ``tfxattr eval --devices N`` uses: a ``MirroredStrategy`` over N
GPUs, or, on a machine without GPUs, over N logical CPU devices (the CPU split by
``tf.config.set_logical_device_configuration``, which TensorFlow accepts only before it initialises its
devices, i.e. before the first tensor or model: call :func:`logical_cpus` first thing in the program).
"""
from __future__ import annotations

from typing import Callable, List

import tensorflow as tf

from ..checks import positive_int
from .compat import graph_function, traced_per_model

# the attribute of a chunk function holding its replicated versions (one per strategy)
_REPLICATED = "_tfxattr_replicated"


def check_strategy(strategy, name: str = "strategy"):
    """``strategy`` if it is a ``tf.distribute.Strategy`` or None, else ValueError naming ``name``."""
    if strategy is None or isinstance(strategy, tf.distribute.Strategy):
        return strategy
    raise ValueError(f"{name} must be a tf.distribute.Strategy (e.g. tf.distribute.MirroredStrategy()) or None, "
                     f"got {type(strategy).__name__} {strategy!r}")


def run_split(strategy: tf.distribute.Strategy, fn: Callable, *args):
    """``fn(*args)`` with the rows (axis 0) of every argument split across ``strategy``'s replicas.

    Replica ``i`` gets the ``i``-th of ``replicas`` contiguous slices (the first ``rows % replicas`` one
    row longer); a chunk with fewer rows than replicas runs as one call (no replica may get an empty slice:
    TF 2.21's oneDNN convolutions fail on an empty batch). The outputs (a tensor or a nest of tensors, rows first) come
    back concatenated in replica order, i.e. in the order of the rows.
    """
    args = [tf.convert_to_tensor(a) for a in args]
    replicas, rows = strategy.num_replicas_in_sync, int(args[0].shape[0])
    if rows < replicas:
        return fn(*args)
    size, extra = divmod(rows, replicas)
    starts = [i * size + min(i, extra) for i in range(replicas + 1)]

    def part(arg):
        return strategy.experimental_distribute_values_from_function(
            lambda ctx: arg[starts[ctx.replica_id_in_sync_group]:starts[ctx.replica_id_in_sync_group + 1]])

    return _replicated(strategy, fn)(*(part(a) for a in args))


def _replicated(strategy, fn) -> Callable:
    """A tf.function running ``fn`` on every replica's values and concatenating the outputs, made once per
    (strategy, fn) and kept on ``fn``. In a tf.function the strategy builds the replicas one after the
    other; run eagerly it traces them in concurrent threads, and Keras layers cannot be traced that way."""
    made = getattr(fn, _REPLICATED, None)
    if made is None:
        made = {}
        setattr(fn, _REPLICATED, made)
    if strategy not in made:
        def replicated(*parts):
            # fn is wrapped: given a tf.function, the strategy would rebuild it around the per-replica
            # values, which its input_signature refuses
            out = strategy.run(lambda *rows: fn(*rows), args=parts)
            local = strategy.experimental_local_results(out)
            return tf.nest.map_structure(lambda *pieces: tf.concat(pieces, 0), *local)
        made[strategy] = traced_per_model(graph_function(replicated, reduce_retracing=True))
    return made[strategy]


def logical_cpus(devices: int) -> List[str]:
    """Names of ``devices`` logical CPU devices, splitting the CPU into that many if it is not yet.

    Must run before TensorFlow initialises its devices (before the first tensor, model or op);
    RuntimeError, saying so, when that is too late and fewer devices exist.
    """
    positive_int(devices, "devices")
    cpu = tf.config.list_physical_devices("CPU")[0]
    configured = tf.config.get_logical_device_configuration(cpu)
    if configured is None or len(configured) < devices:
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
        except RuntimeError:
            have = len(tf.config.list_logical_devices("CPU"))
            raise RuntimeError(
                f"devices={devices} needs {devices} logical CPU devices, but TensorFlow has already initialised "
                f"its devices ({have} CPU device(s)); the CPU can only be split before that. Call "
                f"tfxattr.models.logical_cpus({devices}) (or build the strategy with "
                f"tfxattr.models.mirrored_strategy({devices})) at the start of the program, before any tensor or "
                "model is created") from None
    return [d.name for d in tf.config.list_logical_devices("CPU")[:devices]]


def mirrored_strategy(devices: int) -> tf.distribute.MirroredStrategy:
    """A ``MirroredStrategy`` over ``devices`` GPUs, or over that many logical CPU devices without GPUs."""
    positive_int(devices, "devices")
    gpus = tf.config.list_logical_devices("GPU") if tf.config.list_physical_devices("GPU") else []
    if gpus:
        if len(gpus) < devices:
            raise ValueError(f"devices={devices}, but this machine has {len(gpus)} GPU(s)")
        names = [d.name for d in gpus[:devices]]
    else:
        names = logical_cpus(devices)
    return tf.distribute.MirroredStrategy(names)
