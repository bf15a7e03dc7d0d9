"""The evaluation runner: methods x metrics x models over a data set, resumable (``tfxattr eval``).

>>> evaluate("shapes:40", ["demo"], ["gradient", "ig+idgi:steps=200"], ["insertion", "localization"],
...          out="runs/demo", correct_only=True)

For every model the images are fitted to its input size; for every method the attributions of a batch
of images are computed once and fed to every metric; one record per (model, method, image, target)
is appended to ``<out>/results.jsonl`` as soon as its batch is scored. A run that is killed resumes
where it stopped: keys already in the store are skipped, a torn last line is dropped, nothing is
counted twice. ``<out>/report.md`` (tables and PNG curves, :mod:`tfxattr.evaluation.report`) is rebuilt
from the store at the end.

What a metric needs is read from the registry (``METRICS[name].consumes``, ``.needs_masks``,
``.uses_labels``, ``.curve_axes``); options come as an :class:`EvaluationConfig`.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional

import numpy as np

from ..batching import spans
from ..checks import did_you_mean
from ..explanation import Explanation
from ..methods import Method, get_method
from ..metrics import METRICS, get_metric
from ..models.devices import mirrored_strategy
from ..visualize import reduce_channels
from .config import EvaluationConfig
from .datasets import Chunk, Source, fit_to_input, label_map, load_data
from .loading import LoadedModel, check_model, load_model
from .report import load_store, short_model_names, write_report
from .specs import Spec, parse_spec
from .store import STORE_NAME, ResultStore, json_safe, pack_curve, rounded

RANDOM_WEIGHTS_WARNING = ("WARNING: {models} run(s) with RANDOM weights (--weights none): the numbers are "
                          "meaningless for judging attribution methods; they only show that the pipeline runs.")
#: where metrics that do not score maps of plain images (grids, sanity checks) are run instead
ELSEWHERE = "use eval/rao_grids.py (grids) or tfxattr.evaluation.sanity directly"
#: what the runner can give a metric: the maps, or the Explanation (attribution, method, how it was run)
SCORED_HERE = ("maps", "explanation")


@dataclass
class RunSummary:
    store: str
    report: Optional[str]
    computed: int   # records written by this call
    already_done: int  # records found in the store and skipped
    random_weights: List[str] = field(default_factory=list)
    skipped_files: Dict[str, str] = field(default_factory=dict)  # unreadable image -> reason (left out)


def method_label(method) -> str:
    """The store's name of a method (a spec string or a Method): its registered name plus the options
    that differ from that name's defaults, so "ig+idgi", "ig:aggregator=idgi" and
    ``get_method("ig+idgi")`` are one label."""
    method = _method(method)
    return Spec(method.name, method.changed).label


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


def check_aggregation(aggregation: Optional[dict], scores: Dict[str, Iterable[str]]):
    """Every key of ``aggregation`` ("score" or "metric/score") names a score of the metrics ``scores``
    (metric label -> its score names); else a ValueError naming ``aggregation`` and the valid keys."""
    valid = {s for names in scores.values() for s in names}
    valid |= {f"{m}/{s}" for m, names in scores.items() for s in names}
    unknown = sorted(set(aggregation or {}) - valid)
    if unknown:
        hints = "".join(did_you_mean(u, valid) for u in unknown)
        raise ValueError(f"aggregation: {unknown} name(s) no score of the metrics {sorted(scores)}{hints}; "
                         f"valid: {', '.join(sorted(valid))}")


def stored_scores(store_path) -> Dict[str, List[str]]:
    """Metric label -> its score names, from the metric records of a results store."""
    return {m: list(info["higher_is_better"]) for m, info in load_store(store_path).metrics.items()}


def check_writable(out: str, what: str = "out") -> str:
    """Create directory ``out`` if needed and make sure files can be written there (before any computing)."""
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{what}: cannot create the output directory {out!r} ({err.strerror or err})") from None
    if not os.path.isdir(out):
        raise ValueError(f"{what}: {out!r} is not a directory")
    try:  # os.access ignores ACLs, read-only mounts and root's rights; creating a file does not
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise ValueError(f"{what}: cannot write to the output directory {out!r} ({err.strerror or err})") from None
    return out


def _metric_specs(metrics) -> List[Spec]:
    """Parsed metric specs; unknown options and metrics that do not score maps of plain images refused."""
    specs = [parse_spec(m, "metric") for m in metrics]
    for s in specs:
        metric = get_metric(s.name)
        bad = sorted(set(s.options) - set(metric.defaults))
        if bad:
            hints = "".join(did_you_mean(b, metric.defaults) for b in bad)
            raise ValueError(f"unknown option(s) {bad} for metric {s.name!r}{hints}; "
                             f"valid: {', '.join(sorted(metric.defaults))}")
        if metric.consumes not in SCORED_HERE:
            raise ValueError(f"metric {s.name!r} does not score attribution maps of plain images (it consumes "
                             f"{metric.consumes!r}); {ELSEWHERE}")
    if len({s.label for s in specs}) != len(specs):
        raise ValueError("metrics are listed twice")
    return specs


def _check_data(source: Source, metric_specs: List[Spec], config: EvaluationConfig):
    """The data has what the metrics and the target need (masks, labels)."""
    for s in metric_specs:
        if METRICS[s.name].needs_masks and not source.has_masks:
            raise ValueError(f"metric {s.name!r} needs object masks; data {source.name!r} has none")
    if (config.correct_only or config.target == "label") and not source.has_labels:
        raise ValueError(f"data {source.name!r} has no labels: use target='predicted' without correct_only")


def _nonempty(items, what):
    items = [items] if isinstance(items, (str, Spec)) else list(items or [])
    if not items:
        raise ValueError(f"{what} is empty: give at least one")
    return items


def _stderr(message: str):
    print(message, file=sys.stderr)


def evaluate(data, models, methods, metrics, out, config: Optional[EvaluationConfig] = None,
             **options) -> RunSummary:
    """Score every method with every metric on every model; results go to ``<out>/results.jsonl``.

    ``models``: "demo", Keras application names (optionally "name:weights=none|PATH"), .keras files,
    SavedModel dirs, or keras.Model / ModelAdapter objects. ``methods`` / ``metrics``: spec strings
    ("ig+idgi:steps=200", "insertion:base=blur") or Method instances. ``config``: an
    :class:`EvaluationConfig`; ``options`` (``correct_only=True``, ``batch_size=8``, ...) override its
    fields, and an unknown option raises ValueError naming the closest valid ones.
    ``runner="beam"`` (with ``workers``, ``beam_options``) runs it as an Apache Beam pipeline
    (:mod:`tfxattr.evaluation.beam`): the same records, from several processes or machines.
    """
    if config is not None and not isinstance(config, EvaluationConfig):
        raise TypeError(f"config must be an EvaluationConfig or None, got {type(config).__name__}")
    config = (config or EvaluationConfig()).with_options(**options)
    strategy = mirrored_strategy(config.devices) if config.devices else None  # before TF initialises its devices
    log = config.log or _stderr
    metric_specs = _metric_specs(_nonempty(metrics, "metrics"))
    method_objs = [(method_label(m), _method(m), _shown_name(m)) for m in _nonempty(methods, "methods")]
    if len({label for label, _, _ in method_objs}) != len(method_objs):
        raise ValueError("methods are listed twice")
    chosen = {s.label for s in metric_specs}
    bad = sorted(k for k in (config.aggregation or {}) if "/" in k and k.split("/")[0] not in chosen)
    if bad:
        raise ValueError(f"aggregation: {bad} name(s) a metric that is not run; metrics: {', '.join(sorted(chosen))}")
    out = check_writable(os.fspath(out))
    model_items = _nonempty(models, "models")
    for m in model_items:
        if isinstance(m, (str, Spec, tuple)):
            check_model(parse_spec(m, "model"), config.weights)
    source = load_data(data, config.limit, config.split, config.data_dir, config.manual_dir)
    _check_data(source, metric_specs, config)
    run_config = {"data": source.name, "target": config.target, "resize": config.resize, "reduce": config.reduce,
                  "seed": config.seed, "metrics": {s.label: json_safe(s.options) for s in metric_specs}}
    if config.pixel_range is not None:  # only when given: stores written before it existed still resume
        run_config["pixel_range"] = list(config.pixel_range)
    store_path = os.path.join(out, STORE_NAME)
    summary = RunSummary(store_path, None, 0, 0)
    with ResultStore(store_path) as store:
        check_config(store, run_config)
        if config.runner == "beam":
            from .beam import run_beam

            run_beam(data, model_items, [m for _, m, _ in method_objs], metric_specs, store, source, config,
                     summary, log)
            model_items = []
        for model in model_items:
            loaded = load_model(model, config.weights, config.batch_size, config.pixel_range, strategy)
            if loaded.random_weights:
                summary.random_weights.append(loaded.label)
                log(RANDOM_WEIGHTS_WARNING.format(models=loaded.label))
            _run_model(store, loaded, source, method_objs, metric_specs, summary, config, log)
    if config.report:
        check_aggregation(config.aggregation, stored_scores(store_path))
        summary.report = write_report(store_path, out, aggregation=config.aggregation)
    return summary


def check_config(store: ResultStore, config: dict):
    """Record ``config`` in a new store; refuse a store written with another one."""
    previous = store.config()
    if previous is None:
        store.append({"kind": "run", "config": config})
        return
    diff = sorted(k for k in set(previous) | set(config) if previous.get(k) != config.get(k))
    if diff:
        detail = "; ".join(f"{k}: {previous.get(k)!r} then, {config.get(k)!r} now" for k in diff)
        raise ValueError(f"results store {store.path} was written with another configuration ({detail}); "
                         f"use another output directory, or delete the store to start over")


def _run_model(store, loaded: LoadedModel, source, methods, metric_specs, summary, config: EvaluationConfig,
               log):
    """One model over the whole source, shard by shard (:func:`shard_records`, the computation the Beam
    runner shares); then the model's record (counts, exclusions)."""
    from tqdm.auto import tqdm

    remap = label_map(source, loaded.adapter.class_names, loaded.label)  # class folders named after the model's classes
    total = None if source.size is None else source.size * len(methods)
    seen, correct, excluded = 0, 0, []
    desc = short_model_names([loaded.label])[loaded.label]
    with tqdm(total=total, desc=desc, unit="img", disable=not config.progress, leave=False) as bar:
        def update(n, shown=None):
            if shown:
                bar.set_postfix_str(shown)
            bar.update(n)

        for index, chunk in enumerate(source.chunks(config.chunk_size)):
            _record_skipped(store, chunk, summary, log)
            for record in shard_records(loaded, chunk, index, None, remap, methods, metric_specs, config,
                                        store.done, store.named, source.name, update):
                if record["kind"] == "shard":
                    summary.already_done += record["already_done"]
                    seen, correct, excluded = seen + record["images"], correct + (record["correct"] or 0), \
                        excluded + record["excluded"]
                    continue
                if record["kind"] == "result":
                    check_aggregation(config.aggregation, {m: record["scores"][m] for m in record["scores"]})
                    summary.computed += 1
                store.append(record)
    store.append({"kind": "model", **model_fields(loaded, config), "images": seen,
                  "correct": correct if source.has_labels else None, "excluded": excluded})
    log(f"{loaded.label}: {seen} images"
        + (f", {len(excluded)} excluded as misclassified" if config.correct_only else ""))


def model_fields(loaded: LoadedModel, config: EvaluationConfig) -> dict:
    """What a model's pass record says about the model (its counts are added by the runner)."""
    return {"model": loaded.label, "weights": loaded.weights, "random_weights": loaded.random_weights,
            "input_shape": list(loaded.adapter.input_shape), "correct_only": config.correct_only}


def shard_records(loaded: LoadedModel, chunk: Chunk, index: int, shards: Optional[int], remap, methods,
                  metric_specs, config: EvaluationConfig, done, named, data_name: str, progress=None):
    """Score one shard of images (a :class:`Chunk`) on one model: yields its records, batch by batch.

    The one computation both runners share, so their numbers are the same by construction: the chunk is
    fitted to the model, predicted once, filtered (``correct_only``); for every method (label, Method,
    shown name) the kept images go in fixed batches of ``images_per_batch`` (a resumed run sees the same
    batches), keys in ``done`` are skipped, each batch is attributed once and scored by every metric.
    Yields "metric" records (once per metric not in ``named``; ``named`` is updated), "result" records, and
    last a "shard" record: this shard's counts (``images``, ``correct``, ``excluded``, ``already_done``).
    ``progress(n, shown)``: called as images are done (or found done).
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
    adapter.check_pixels(x, f"data {data_name!r}")  # every shard: any of them may be the first one run
    _check_labels(chunk, loaded, adapter, config.target, config.correct_only)
    probs = adapter.probabilities(x)
    predicted = probs.argmax(-1)
    keep = np.arange(len(x))
    if chunk.labels is not None:
        stats["correct"] = int(np.sum(predicted == chunk.labels))
        if config.correct_only:
            keep = np.flatnonzero(predicted == chunk.labels)
            stats["excluded"] = [chunk.ids[i] for i in np.setdiff1d(np.arange(len(x)), keep)]
    stats["images"] = len(x)
    targets = (chunk.labels if config.target == "label" else predicted).astype(np.int32)
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
            yield from _score_batch(loaded, label, method, batch, idx, metric_specs, named, config)
            progress(len(idx))
    yield stats


def skipped_records(chunk: Chunk, named) -> List[dict]:
    """One "skipped" record per unreadable file of ``chunk`` not yet in the store (``named``)."""
    return [{"kind": "skipped", "image": image, "reason": reason} for image, reason in chunk.skipped.items()
            if ("skipped", image) not in named]


def _record_skipped(store, chunk, summary, log):
    """One "skipped" record per unreadable file (once per store), and a line in the log."""
    for image, reason in chunk.skipped.items():
        if image not in summary.skipped_files:
            log(f"skipped {image}: {reason}")
        summary.skipped_files[image] = reason
    for record in skipped_records(chunk, store.named):
        store.append(record)


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
        raise ValueError(f"image {bad!r} has no label ({chunk.labels.min()}): use target='predicted' "
                         "without correct_only for unlabelled data")


def attribution_maps(attributions: np.ndarray, reduce: str = "auto") -> np.ndarray:
    """(N,H,W) maps: ``reduce`` over channels; "auto" = sum of |a|, but a single-channel attribution
    (a method's own map: Grad-CAM, IIA, XRAI) is kept signed."""
    if reduce == "auto":
        reduce = "sum" if attributions.shape[-1] == 1 else "sum_abs"
    return reduce_channels(attributions, reduce)


def _score_batch(loaded, label, method, batch, idx, metric_specs, named, config: EvaluationConfig) -> List[dict]:
    """Attribute images ``idx`` of ``batch`` once, score the maps with every metric: the description of each
    metric not yet in ``named`` (added to it), then one record per image."""
    adapter, chunk, x, targets = loaded.adapter, batch.chunk, batch.x, batch.targets
    start = time.perf_counter()
    attr = np.asarray(method.attribute(adapter, x[idx], targets[idx], progress=False, seed=config.seed))
    seconds = (time.perf_counter() - start) / len(idx)
    if not np.all(np.isfinite(attr)):
        bad = [chunk.ids[i] for i, a in zip(idx, attr) if not np.all(np.isfinite(a))]
        raise FloatingPointError(f"{loaded.label} / {label}: non-finite attributions for images {bad}")
    maps = attribution_maps(attr, config.reduce)
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
                                     masks=None if batch.masks is None else batch.masks[idx], **options)
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
