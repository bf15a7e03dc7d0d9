"""One shard of an evaluation: fit a chunk of images to a model, attribute, score every metric, and yield
the store's records. The local runner (:mod:`.runner`) and the Beam runner (:mod:`.beam`) both run
:func:`shard_records`, so their numbers are the same by construction."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from ..batching import spans
from ..explanation import Explanation
from ..methods import Method, get_method
from ..metrics import METRICS
from ..reduction import reduce_channels
from ..specs import parse_spec, spec_label
from .config import EvaluationConfig
from .datasets import Chunk, fit_to_input
from .loading import LoadedModel
from .store import json_safe, pack_curve, rounded

RANDOM_WEIGHTS_WARNING = ("WARNING: {models} run(s) with RANDOM weights (--weights none): the numbers are "
                          "meaningless for judging attribution methods; they only show that the pipeline runs.")

def method_label(method) -> str:
    """The store's name of a method (a spec string or a Method): its registered name plus the options
    that differ from that name's defaults, so "ig+idgi", "ig:aggregator=idgi" and
    ``get_method("ig+idgi")`` are one label."""
    method = _method(method)
    return spec_label(method.name, method.changed)


def _method(method):
    if isinstance(method, Method):
        return method
    spec = parse_spec(method, "method")
    return get_method(spec.name, **spec.options)


def _shown_name(method) -> str:
    """A method as the user named it (the progress bar's text): "ig+idgi", not the store's "ig:aggregator=idgi"."""
    if isinstance(method, Method):
        return method_label(method)
    return parse_spec(method, "method").label


def model_fields(loaded: LoadedModel, config: EvaluationConfig) -> dict:
    """What a model's pass record says about the model (its counts are added by the runner)."""
    return {"model": loaded.label, "weights": loaded.weights, "random_weights": loaded.random_weights,
            "input_shape": list(loaded.adapter.input_shape), "correct_only": config.correct_only}


def shard_records(loaded: LoadedModel, chunk: Chunk, index: int, shards: Optional[int], remap, methods,
                  metric_specs, config: EvaluationConfig, done, named, data_name: str, progress=None, pool=None):
    """Score one shard of images (a :class:`Chunk`) on one model: yields its records, batch by batch.

    The one computation both runners share, so their numbers are the same by construction: the chunk is
    fitted to the model, predicted once, filtered (``correct_only``); for every method (label, Method,
    shown name) the kept images go in fixed batches of ``images_per_batch`` (a resumed run sees the same
    batches), keys in ``done`` are skipped, each batch is attributed once and scored by every metric.
    Yields "metric" records (once per metric not in ``named``; ``named`` is updated), "result" records, and
    last a "shard" record: this shard's counts (``images``, ``correct``, ``excluded``, ``already_done``).
    ``progress(n, shown)``: called as images are done (or found done). ``pool``: the run's
    :class:`~tfxattr.parallel.WorkerPool` for the metrics' per-image CPU work (None: one process).
    """
    progress = progress or (lambda n, shown=None: None)
    adapter = loaded.adapter
    stats = {"kind": "shard", **model_fields(loaded, config), "shard": index, "shards": shards,
             "images": 0, "correct": None, "excluded": [], "already_done": 0}
    if not chunk.ids:
        progress(len(chunk.skipped) * len(methods))
        yield stats
        return
    if remap is not None and chunk.labels is not None:
        chunk.labels = remap[chunk.labels]
    x, masks = fit_to_input(chunk.images, _input_size(adapter, chunk), config.resize, chunk.masks)
    adapter = adapter.for_images(x)  # an assumed pixel range follows the data, as in explain()
    loaded = dataclasses.replace(loaded, adapter=adapter)
    adapter.check_pixels(x, f"data {data_name!r}")  # every shard: any of them may be the first one run
    _check_labels(chunk, loaded, adapter, config.targets, config.correct_only)
    probs = adapter.probabilities(x)
    predicted = probs.argmax(-1)
    keep = np.arange(len(x))
    if chunk.labels is not None:
        stats["correct"] = int(np.sum(predicted == chunk.labels))
        if config.correct_only:
            keep = np.flatnonzero(predicted == chunk.labels)
            stats["excluded"] = [chunk.ids[i] for i in np.setdiff1d(np.arange(len(x)), keep)]
    stats["images"] = len(x)
    targets = (chunk.labels if config.targets == "label" else predicted).astype(np.int32)
    batch = _Batch(chunk, x, masks, targets, predicted, probs)
    for label, method, shown in methods:
        todo = {i for i in keep if (loaded.label, label, chunk.ids[i], int(targets[i])) not in done}
        stats["already_done"] += len(keep) - len(todo)
        progress(len(x) + len(chunk.skipped) - len(todo), shown)
        # fixed batches over the kept images: a resumed run sees the same batches as an uninterrupted one
        for span in spans(len(keep), config.images_per_batch):
            idx = np.array([i for i in keep[span] if i in todo], dtype=int)
            if len(idx) == 0:
                continue
            yield from _score_batch(loaded, label, method, batch, idx, metric_specs, named, config, pool)
            progress(len(idx))
    yield stats


def skipped_records(chunk: Chunk, named) -> List[dict]:
    """One "skipped" record per unreadable file of ``chunk`` not yet in the store (``named``)."""
    return [{"kind": "skipped", "image": image, "reason": reason} for image, reason in chunk.skipped.items()
            if ("skipped", image) not in named]


@dataclass
class _Batch:
    """A chunk fitted to one model: pixels, masks, targets and the model's predictions."""
    chunk: Chunk
    x: np.ndarray
    masks: Optional[np.ndarray]
    targets: np.ndarray
    predicted: np.ndarray
    probs: np.ndarray


def _input_size(adapter, chunk):
    h, w = adapter.input_shape[:2]
    return (h, w) if h is not None and w is not None else chunk.images[0].shape[:2]


def _check_labels(chunk, loaded, adapter, target, correct_only):
    if chunk.labels is None or not len(chunk.labels):
        return
    if chunk.labels.max() >= adapter.num_classes:
        raise ValueError(f"labels go up to {chunk.labels.max()} but model {loaded.label!r} has "
                         f"{adapter.num_classes} classes")
    if (target == "label" or correct_only) and chunk.labels.min() < 0:
        bad = chunk.ids[int(np.argmin(chunk.labels))]
        raise ValueError(f"image {bad!r} has no label ({chunk.labels.min()}): use targets='predicted' "
                         "without correct_only for unlabelled data")


def _score_batch(loaded, label, method, batch, idx, metric_specs, named, config: EvaluationConfig,
                 pool=None) -> List[dict]:
    """Attribute images ``idx`` of ``batch`` once, score the maps with every metric: the description of each
    metric not yet in ``named`` (added to it), then one record per image."""
    adapter, chunk, x, targets = loaded.adapter, batch.chunk, batch.x, batch.targets
    start = time.perf_counter()
    attr = np.asarray(method.attribute(adapter, x[idx], targets[idx], progress=False, seed=config.seed))
    seconds = (time.perf_counter() - start) / len(idx)
    if not np.all(np.isfinite(attr)):
        bad = [chunk.ids[i] for i, a in zip(idx, attr) if not np.all(np.isfinite(a))]
        raise FloatingPointError(f"{loaded.label} / {label}: non-finite attributions for images {bad}")
    maps = reduce_channels(attr, config.reduce)  # the one reduction: Explanation.map's with reduce='auto'
    results, records = {}, []
    for spec in metric_specs:
        metric = METRICS[spec.name]
        options = dict(spec.options)
        if metric.uses_labels and chunk.labels is not None and "labels" not in options:
            options["labels"] = chunk.labels[idx]  # e.g. POS/NEG count hits against the ground truth
        given = maps if metric.consumes == "maps" else Explanation(
            attribution=attr, targets=targets[idx], method=method.name, options=dict(method.options),
            run={"output": adapter.output, "batch_size": config.batch_size, "seed": config.seed},
            images=x[idx], pixel_range=adapter.pixel_range)
        results[spec.label] = metric(adapter, x[idx], given, targets=targets[idx], batch_size=config.batch_size,
                                     masks=None if batch.masks is None else batch.masks[idx], jobs=pool or 1,
                                     **options)
        if ("metric", spec.label) not in named:
            named.add(("metric", spec.label))
            records.append(_metric_record(spec, results[spec.label]))
    grids = {name: {k: rounded(c.x, CURVE_X_DIGITS) for k, c in r.curves.items()} for name, r in results.items()}
    for j, i in enumerate(idx):
        rec = {"kind": "result", "model": loaded.label, "method": label, "image": chunk.ids[i],
               "target": int(targets[i]), "label": None if chunk.labels is None else int(chunk.labels[i]),
               "predicted": int(batch.predicted[i]), "probability": json_safe(batch.probs[i, targets[i]]),
               "seconds": round(seconds, 4), "scores": {}, "skipped": {}, "curves": {}}
        for name, r in results.items():
            rec["scores"][name] = {k: json_safe(v[j]) for k, v in r.scores.items()}
            rec["skipped"][name] = {k: s[j] for k, s in r.skipped.items() if j in s}
            if r.curves:  # at their breakpoints on the grid the metric record holds (store.pack_curve)
                rec["curves"][name] = {k: pack_curve(grids[name][k], c.y[j]) for k, c in r.curves.items()}
            binned = {k: rounded(np.ravel(c.points[j])) for k, c in r.curves.items() if c.bins}
            if binned:  # IDGI's binned estimator pools every image's raw (x, y) points (Sec. 4.4)
                rec.setdefault("points", {})[name] = binned
        records.append(rec)
    return records


#: decimals of a curve's x values in its metric record (the grid packed curves are rebuilt on)
CURVE_X_DIGITS = 8


def _metric_record(spec, result) -> dict:
    """A metric's description (for the report): options, aggregation, directions, curve x values, x-axis labels."""
    axes = METRICS[spec.name].curve_axes
    return {"kind": "metric", "metric": spec.label, "name": spec.name, "options": json_safe(result.options),
            "aggregation": result.aggregation, "higher_is_better": dict(result.higher_is_better),
            "curves": {k: {"x": rounded(c.x, CURVE_X_DIGITS), "scale": float(c.scale),
                           **({"bins": c.bins} if c.bins else {})} for k, c in result.curves.items()},
            "curve_axes": {k: axes.get(k, "") for k in result.curves}}
