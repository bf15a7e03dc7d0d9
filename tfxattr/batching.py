r"""The one chunking primitive: every model call of every method goes through chunks of ``batch_size``.

Work is a list of rows (an image, an (image, point) pair, an (image, start point) pair); :func:`chunks`
cuts any such list into consecutive blocks of at most ``size`` rows, so memory is bounded by
``batch_size`` whatever the number of images or path points. :func:`groups` does the same for rows
that must share a key within one call (a PAIR ``call_model_function`` takes one class per call);
:func:`per_image` folds per-row results back into one result per image. Inside a ``tf.function``
(serving, the learned explainer's soft AUCs), :func:`chunk_loop` and :func:`chunk_map` cut rows the same way
with ``tf.while_loop``.

Every method's computation is written once, as TensorFlow code over chunks of rows: run eagerly
(``explain()``, ``compute()``, ``tfxattr eval``) :func:`chunk_loop`, :func:`chunk_map` and
:func:`step_loop` are Python loops (a progress bar, ``strategy=`` splitting inside the evaluator),
and traced inside a ``tf.function`` (an exported SavedModel, ``explainer_model``) the same calls
build ``tf.while_loop`` loops. One body, two drivers: the doors cannot drift apart.
"""
from __future__ import annotations

from typing import Iterator, Tuple

import numpy as np
import tensorflow as tf


def spans(n: int, size: int) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)``, each at most ``size`` long."""
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def chunks(rows, size: int) -> Iterator:
    """``rows[span]`` for every span of :func:`spans` (arrays, lists, tensors)."""
    for span in spans(len(rows), size):
        yield rows[span]


def count(n: int, size: int) -> int:
    """How many chunks :func:`spans` yields for ``n`` rows."""
    return -(-n // size)


def pairs(n_images: int, ids) -> np.ndarray:
    """(image, id) rows, image-major: ``[[0, ids[0]], [0, ids[1]], ..., [n-1, ids[-1]]]``."""
    ids = np.asarray(ids, np.int64)
    image = np.repeat(np.arange(n_images), len(ids))
    return np.stack([image, np.tile(ids, n_images)], 1)


def groups(keys, size: int) -> Iterator[Tuple[object, np.ndarray]]:
    """``(key, row indices)`` for the rows sharing each key (first-seen order), in chunks of at most
    ``size`` rows: every chunk is one call that needs a single key (e.g. one target class)."""
    keys = np.asarray(keys)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    for group in np.argsort(first, kind="stable"):
        rows = np.flatnonzero(inverse.reshape(-1) == group)
        for block in chunks(rows, size):
            yield keys[block[0]].item(), block


def per_image(image_ids, rows: np.ndarray, n_images: int, reduce=np.add, out=None) -> np.ndarray:
    """Fold per-row results ``rows`` into one result per image with ``reduce`` (``np.add``, ``np.maximum``).

    The rows of one image are reduced first, then folded into ``out`` (``out[i] = reduce(out[i],
    reduce.reduce(rows of i))``), so the order of additions does not depend on how rows were chunked
    within an image's block.
    """
    image_ids = np.asarray(image_ids)
    if out is None:
        out = np.zeros((n_images,) + rows.shape[1:], rows.dtype)
    for i in np.unique(image_ids):
        out[i] = reduce(out[i], reduce.reduce(rows[image_ids == i], axis=0))
    return out


# -- chunk loops: a Python loop when eager, a tf.while_loop when traced -----------------------------
# chunks run one after another: a second chunk in flight would double the memory bound
SEQUENTIAL = 1


def chunk_loop(n_rows, batch_size: int, body, state, bar=None):
    """Run ``body(start, stop, *state) -> state`` over ``[0, n_rows)`` in chunks of ``batch_size`` rows.

    Eager: a Python loop (``bar.update(1)`` after each chunk when a progress ``bar`` is given); inside
    a ``tf.function``: one ``tf.while_loop`` with ``parallel_iterations=1``. Returns the final state."""
    state = tuple(state)
    if tf.executing_eagerly():
        n = int(n_rows)
        for span in spans(n, int(batch_size)):
            state = tuple(body(span.start, span.stop, *state))
            if bar is not None:
                bar.update(1)
        return state
    invariants = (tf.TensorShape([]),) + relaxed(state)

    def step(start, *s):
        stop = tf.minimum(start + batch_size, n_rows)
        return (stop,) + tuple(body(start, stop, *s))

    out = tf.while_loop(lambda start, *s: start < n_rows, step, (tf.constant(0, tf.int32),) + state,
                        shape_invariants=invariants, parallel_iterations=SEQUENTIAL)
    return out[1:]


def step_loop(steps: int, body, state, bar=None):
    """``state = body(k, *state)`` for ``k = 0 .. steps - 1`` (an adaptive path's lockstep walk).

    Eager: a Python loop with ``k`` a Python int; traced: a ``tf.while_loop`` with ``k`` an int32 tensor."""
    state = tuple(state)
    if tf.executing_eagerly():
        for k in range(int(steps)):
            state = tuple(body(k, *state))
            if bar is not None:
                bar.update(1)
        return state
    out = tf.while_loop(lambda k, *s: k < steps, lambda k, *s: (k + 1,) + tuple(body(k, *s)),
                        (tf.constant(0),) + state, shape_invariants=(tf.TensorShape([]),) + relaxed(state),
                        parallel_iterations=SEQUENTIAL)
    return out[1:]


def relaxed(structure):
    """Shape invariants for loop variables whose sizes change between iterations (rank kept)."""
    return tf.nest.map_structure(
        lambda t: tf.TensorShape(None if t.shape.rank is None else [None] * t.shape.rank), structure)


def chunk_map(fn, dtypes, n_rows, batch_size: int, *tensors, bar=None):
    """``fn(*[t[start:stop] for t in tensors])`` for every chunk, concatenated along rows.

    ``fn`` returns a tuple of tensors of ``dtypes``; the concatenated tuple is returned (eager: a
    Python loop; traced: a ``tf.while_loop`` writing TensorArrays)."""
    if tf.executing_eagerly():
        parts = [fn(*[t[span] for t in tensors]) for span in _tracked(spans(int(n_rows), int(batch_size)), bar)]
        if not parts:
            return tuple(tf.zeros([0], d) for d in dtypes)
        return tuple(tf.concat(list(p), 0) for p in zip(*parts))

    def body(start, stop, *arrays):
        out = fn(*[t[start:stop] for t in tensors])
        return tuple(a.write(a.size(), o) for a, o in zip(arrays, out))

    arrays = [tf.TensorArray(d, size=0, dynamic_size=True, infer_shape=False) for d in dtypes]
    return tuple(a.concat() for a in _ta_loop(n_rows, batch_size, body, arrays))


def _tracked(items, bar):
    for item in items:
        yield item
        if bar is not None:
            bar.update(1)


def _ta_loop(n_rows, batch_size, body, arrays):
    """:func:`chunk_loop` for TensorArray state (no shape invariants needed)."""
    def step(start, *s):
        stop = tf.minimum(start + batch_size, n_rows)
        return (stop,) + tuple(body(start, stop, *s))

    out = tf.while_loop(lambda start, *s: start < n_rows, step, (tf.constant(0, tf.int32),) + tuple(arrays),
                        parallel_iterations=SEQUENTIAL)
    return out[1:]


# -- the edges of a method written once for both doors ----------------------------------------------
def rows(x):
    """The number of rows of ``x``: a Python int eagerly, an int32 tensor when traced (a free batch size)."""
    return int(x.shape[0]) if tf.executing_eagerly() else tf.shape(x)[0]


def per_row(values):
    """(rows,) -> (rows, 1, 1, 1): one value per row, to scale (rows, H, W, C) images row by row."""
    return tf.reshape(values, [-1, 1, 1, 1])


def as_rows(images, targets):
    """``(images, targets)`` as float32 / int32 tensors (numpy eagerly; the signature's tensors traced)."""
    return tf.convert_to_tensor(images, tf.float32), tf.convert_to_tensor(targets, tf.int32)


def opened(t):
    """``t`` as numpy eagerly (what a method's ``attribute`` takes and returns there), the tensor traced."""
    return t.numpy() if tf.executing_eagerly() else t


def finish(result):
    """A method's result: float32 numpy eagerly (explain()), the float32 tensor when traced (export)."""
    return opened(tf.cast(result, tf.float32))
