"""The evaluation runner: methods x metrics x models over a data set, resumable (``tfxattr eval``).

>>> evaluate("shapes:40", ["demo"], ["gradient", "ig+idgi:steps=200"], ["insertion", "localization"],
...          out="runs/demo", correct_only=True)

For every model the images are fitted to its input size; for every method the attributions of a batch
of images are computed once and fed to every metric; one record per (model, method, image, target)
is appended to ``<out>/results.jsonl`` as soon as its batch is scored. A run that is killed resumes
where it stopped: keys already in the store are skipped, a torn last line is dropped, nothing is
counted twice. ``<out>/report.md`` (tables and PNG curves, :mod:`tfxattr.report`) is rebuilt from
the store at the end.

Sections: specs ("name:key=value,..."), models, the runner; data sources live in
:mod:`tfxattr.datasets`, the results store in :mod:`tfxattr.store`.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np

from .datasets import RESIZE, Chunk, fit_to_input, load_data  # noqa: F401 - also re-exported
from .specs import Spec, parse_spec  # noqa: F401 - also re-exported
from .store import STORE_NAME, ResultStore, json_safe, read_records, result_key, rounded  # noqa: F401

TARGETS = ("label", "predicted")
RANDOM_WEIGHTS_WARNING = ("WARNING: {models} run(s) with RANDOM weights (--weights none): the numbers are "
                          "meaningless for judging attribution methods; they only show that the pipeline runs.")


# -- models -------------------------------------------------------------------------------------------
@dataclass
class LoadedModel:
    label: str
    adapter: object
    random_weights: bool
    weights: Optional[str]


def check_model(spec: Spec, weights="imagenet"):
    """Fail early: ``spec`` names "demo", a .keras/.h5 file, a SavedModel dir or a Keras application."""
    unknown = sorted(set(spec.options) - {"weights"})
    if unknown:
        raise ValueError(f"model {spec.label!r}: unknown option(s) {unknown}; valid: weights")
    if spec.name == "demo" or os.path.isdir(spec.name) or (os.path.isfile(spec.name)
                                                            and spec.name.endswith((".keras", ".h5"))):
        return
    import keras_apps

    try:
        app = keras_apps.get(spec.name)
    except ValueError:
        raise ValueError(f"unknown model {spec.name!r}: expected 'demo', a .keras/.h5 file, a SavedModel "
                         f"directory or a Keras application ({', '.join(keras_apps.NAMES)})") from None
    w = _weights(spec.options.get("weights", weights))
    if w == "imagenet":
        keras_apps.fetch_weights(app)  # raises WeightsUnavailableError saying where to put the file
    elif w is not None and not os.path.isfile(w):
        raise ValueError(f"model {spec.label!r}: weights file {w!r} not found")


def load_model(model, weights="imagenet", batch_size: int = 32) -> LoadedModel:
    """A :class:`LoadedModel` from a spec string / Spec, a keras.Model or a ModelAdapter."""
    from .models import as_model

    if not isinstance(model, (str, Spec, tuple)):
        adapter = as_model(model, batch_size=batch_size)
        return LoadedModel(getattr(adapter, "name", "model"), adapter, False, None)
    spec = parse_spec(model, "model")
    check_model(spec, weights)
    w = _weights(spec.options.get("weights", weights))
    if spec.name == "demo":
        from .demo import DEMO_CLASS_NAMES, load_demo_model

        adapter = as_model(load_demo_model(), batch_size=batch_size)
        adapter.class_names = list(DEMO_CLASS_NAMES)
        return LoadedModel("demo", adapter, False, None)
    if os.path.exists(spec.name):
        return LoadedModel(spec.name, as_model(spec.name, batch_size=batch_size), False, None)
    import keras_apps

    name = keras_apps.get(spec.name).name
    adapter = as_model(name, batch_size=batch_size, weights=w)
    label = name if w == "imagenet" else f"{name}:weights={'none' if w is None else w}"
    return LoadedModel(label, adapter, w is None, "none" if w is None else w)


def _weights(w):
    return None if w is None or (isinstance(w, str) and w.lower() == "none") else w


# -- the runner ---------------------------------------------------------------------------------------
@dataclass
class RunSummary:
    store: str
    report: Optional[str]
    computed: int   # records written by this call
    already_done: int  # records found in the store and skipped
    random_weights: List[str] = field(default_factory=list)


def method_label(method) -> str:
    """The store's name of a method: its spec label, or for a Method instance its name + non-default options."""
    from .methods import Method

    if isinstance(method, Method):
        changed = {k: v for k, v in method.options.items() if type(method).defaults.get(k, object()) != v}
        return Spec(method.name, changed).label
    return parse_spec(method, "method").label


def _method(method):
    from .methods import Method, get_method

    if isinstance(method, Method):
        return method
    spec = parse_spec(method, "method")
    return get_method(spec.name, **spec.options)


def _base_metric(name):
    """The function a registered metric name wraps (presets share it)."""
    from .metrics import get_metric

    fn = get_metric(name)
    return getattr(fn, "__wrapped__", fn)


def _metric_specs(metrics) -> List[Spec]:
    from .metrics import get_metric
    from .metrics.grids import grid_localization
    from .metrics.sanity import cascading_randomization_metric, sigma_perturbation_metric

    specs = [parse_spec(m, "metric") for m in metrics]
    for s in specs:
        fn = get_metric(s.name)
        bad = sorted(set(s.options) - set(fn.defaults))
        if bad:
            raise ValueError(f"unknown option(s) {bad} for metric {s.name!r}; valid: {', '.join(sorted(fn.defaults))}")
        if _base_metric(s.name) in (grid_localization, cascading_randomization_metric, sigma_perturbation_metric):
            raise ValueError(f"metric {s.name!r} does not score attribution maps of plain images; use "
                             f"eval/rao_grids.py (grids) or tfxattr.metrics.sanity directly")
    if len({s.label for s in specs}) != len(specs):
        raise ValueError("metrics are listed twice")
    return specs


def _nonempty(items, what):
    items = [items] if isinstance(items, (str, Spec)) else list(items or [])
    if not items:
        raise ValueError(f"{what} is empty: give at least one")
    return items


def evaluate(data, models, methods, metrics, out, *, correct_only: bool = False, target: str = "label",
             limit: Optional[int] = None, weights="imagenet", batch_size: int = 32, images_per_batch: int = 16,
             split: str = "validation", data_dir=None, manual_dir=None, resize: str = "crop", reduce: str = "auto",
             seed: int = 0, progress=True, report: bool = True, aggregation: Optional[dict] = None,
             chunk_size: int = 256, log: Callable[[str], None] = None) -> RunSummary:
    """Score every method with every metric on every model; results go to ``<out>/results.jsonl``.

    ``models``: "demo", Keras application names (optionally "name:weights=none|PATH"), .keras files,
    SavedModel dirs, or keras.Model / ModelAdapter objects. ``methods`` / ``metrics``: spec strings
    ("ig+idgi:steps=200", "insertion:base=blur") or Method instances. ``correct_only``: keep only images
    the model classifies correctly (IDGI). ``target``: explain the "label" or the "predicted" class.
    ``reduce``: channel reduction of (N,H,W,C) attributions to maps; "auto" = sum of |a| over channels
    (PAIR's grayscale map), except single-channel maps (Grad-CAM, IIA, XRAI), which are used as they are.
    ``aggregation``: per-score overrides for the report (e.g. {"aic": "mean"}). ``chunk_size``: images
    read and fitted to a model at a time (memory bound); ``images_per_batch``: images attributed together.
    """
    from .metrics.localization import localization
    from .visualize import REDUCTIONS

    log = log or (lambda msg: print(msg, file=sys.stderr))
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if resize not in RESIZE:
        raise ValueError(f"resize must be one of {RESIZE}, got {resize!r}")
    if reduce != "auto" and reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be 'auto' or one of {REDUCTIONS}, got {reduce!r}")
    for name, value in (("batch_size", batch_size), ("images_per_batch", images_per_batch),
                        ("chunk_size", chunk_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    metric_specs = _metric_specs(_nonempty(metrics, "metrics"))
    method_objs = [(method_label(m), _method(m)) for m in _nonempty(methods, "methods")]
    if len({label for label, _ in method_objs}) != len(method_objs):
        raise ValueError("methods are listed twice")
    model_items = _nonempty(models, "models")
    for m in model_items:
        if isinstance(m, (str, Spec, tuple)):
            check_model(parse_spec(m, "model"), weights)
    source = load_data(data, limit, split, data_dir, manual_dir)
    if not source.has_masks and any(_base_metric(s.name) is localization for s in metric_specs):
        raise ValueError(f"metric 'localization' needs object masks; data {source.name!r} has none")
    if (correct_only or target == "label") and not source.has_labels:
        raise ValueError(f"data {source.name!r} has no labels: use target='predicted' without correct_only")
    config = {"data": source.name, "target": target, "resize": resize, "reduce": reduce, "seed": seed,
              "metrics": {s.label: json_safe(s.options) for s in metric_specs}}
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    store_path = os.path.join(out, STORE_NAME)
    summary = RunSummary(store_path, None, 0, 0)
    with ResultStore(store_path) as store:
        check_config(store, config)
        for model in model_items:
            loaded = load_model(model, weights, batch_size)
            if loaded.random_weights:
                summary.random_weights.append(loaded.label)
                log(RANDOM_WEIGHTS_WARNING.format(models=loaded.label))
            _run_model(store, loaded, source, method_objs, metric_specs, summary, correct_only=correct_only,
                       target=target, batch_size=batch_size, images_per_batch=images_per_batch,
                       chunk_size=chunk_size, resize=resize, reduce=reduce, seed=seed, progress=progress, log=log)
    if report:
        from .report import write_report

        summary.report = write_report(store_path, out, aggregation=aggregation)
    return summary


def check_config(store: ResultStore, config: dict):
    previous = store.config()
    if previous is None:
        store.append({"kind": "run", "config": config})
        return
    diff = sorted(k for k in set(previous) | set(config) if previous.get(k) != config.get(k))
    if diff:
        detail = "; ".join(f"{k}: {previous.get(k)!r} then, {config.get(k)!r} now" for k in diff)
        raise ValueError(f"results store {store.path} was written with another configuration ({detail}); "
                         f"use another output directory, or delete the store to start over")


def _run_model(store, loaded, source, methods, metric_specs, summary, *, correct_only, target, batch_size,
               images_per_batch, chunk_size, resize, reduce, seed, progress, log):
    """One model over the whole source, chunk by chunk; then the model's record (counts, exclusions)."""
    from tqdm.auto import tqdm

    adapter = loaded.adapter
    total = None if source.size is None else source.size * len(methods)
    seen, correct, excluded = 0, 0, []
    with tqdm(total=total, desc=loaded.label, unit="img", disable=not progress, leave=False) as bar:
        for chunk in source.chunks(chunk_size):
            x, masks = fit_to_input(chunk.images, _input_size(adapter, chunk), resize, chunk.masks)
            _check_labels(chunk, loaded, adapter, target, correct_only)
            probs = adapter.probabilities(x)
            predicted = probs.argmax(-1)
            keep = np.arange(len(x))
            if chunk.labels is not None:
                correct += int(np.sum(predicted == chunk.labels))
                if correct_only:
                    keep = np.flatnonzero(predicted == chunk.labels)
                    excluded += [chunk.ids[i] for i in np.setdiff1d(np.arange(len(x)), keep)]
            seen += len(x)
            targets = (chunk.labels if target == "label" else predicted).astype(np.int32)
            batch = _Batch(chunk, x, masks, targets, predicted, probs)
            for label, method in methods:
                todo = {i for i in keep if (loaded.label, label, chunk.ids[i], int(targets[i])) not in store.done}
                summary.already_done += len(keep) - len(todo)
                bar.set_postfix_str(label)
                bar.update(len(x) - len(todo))
                # fixed batches over the kept images: a resumed run sees the same batches as an uninterrupted one
                for start in range(0, len(keep), images_per_batch):
                    idx = np.array([i for i in keep[start:start + images_per_batch] if i in todo], dtype=int)
                    if len(idx) == 0:
                        continue
                    for record in _score_batch(loaded, label, method, batch, idx, metric_specs, store,
                                               batch_size=batch_size, reduce=reduce, seed=seed):
                        store.append(record)
                        summary.computed += 1
                    bar.update(len(idx))
    store.append({"kind": "model", "model": loaded.label, "weights": loaded.weights,
                  "random_weights": loaded.random_weights, "input_shape": list(adapter.input_shape),
                  "images": seen, "correct": correct if source.has_labels else None, "correct_only": correct_only,
                  "excluded": excluded})
    log(f"{loaded.label}: {seen} images" + (f", {len(excluded)} excluded as misclassified" if correct_only else ""))


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
    from .visualize import reduce_channels

    if reduce == "auto":
        reduce = "sum" if attributions.shape[-1] == 1 else "sum_abs"
    return reduce_channels(attributions, reduce)


def _score_batch(loaded, label, method, batch, idx, metric_specs, store, *, batch_size, reduce,
                 seed) -> List[dict]:
    """Attribute images ``idx`` of ``batch`` once, score the maps with every metric, one record per image."""
    from .metrics import METRICS

    adapter, chunk, x, targets = loaded.adapter, batch.chunk, batch.x, batch.targets
    start = time.perf_counter()
    attr = np.asarray(method.attribute(adapter, x[idx], targets[idx], progress=False, seed=seed))
    seconds = (time.perf_counter() - start) / len(idx)
    if not np.all(np.isfinite(attr)):
        bad = [chunk.ids[i] for i, a in zip(idx, attr) if not np.all(np.isfinite(a))]
        raise FloatingPointError(f"{loaded.label} / {label}: non-finite attributions for images {bad}")
    maps = attribution_maps(attr, reduce)
    results = {}
    for spec in metric_specs:
        fn = METRICS[spec.name]
        options = dict(spec.options)
        if "labels" in fn.defaults and chunk.labels is not None and "labels" not in options:
            options["labels"] = chunk.labels[idx]  # POS/NEG count hits against the ground truth
        results[spec.label] = fn(adapter, x[idx], maps, targets=targets[idx], batch_size=batch_size,
                                 masks=None if batch.masks is None else batch.masks[idx], **options)
        _describe_metric(store, spec, results[spec.label])
    records = []
    for j, i in enumerate(idx):
        rec = {"kind": "result", "model": loaded.label, "method": label, "image": chunk.ids[i],
               "target": int(targets[i]), "label": None if chunk.labels is None else int(chunk.labels[i]),
               "predicted": int(batch.predicted[i]), "probability": json_safe(batch.probs[i, targets[i]]),
               "seconds": round(seconds, 4), "scores": {}, "skipped": {}, "curves": {}}
        for name, r in results.items():
            rec["scores"][name] = {k: json_safe(v[j]) for k, v in r.scores.items()}
            rec["skipped"][name] = {k: s[j] for k, s in r.skipped.items() if j in s}
            if r.curves:
                rec["curves"][name] = {k: rounded(c.y[j]) for k, c in r.curves.items()}
        records.append(rec)
    return records


def _describe_metric(store, spec, result):
    """Once per metric: its options, aggregation, directions and curve x-axes (the report needs them)."""
    if ("metric", spec.label) in store.named:
        return
    store.append({"kind": "metric", "metric": spec.label, "name": spec.name, "options": json_safe(result.options),
                  "aggregation": result.aggregation, "higher_is_better": dict(result.higher_is_better),
                  "curves": {k: {"x": rounded(c.x, 8), "scale": float(c.scale)} for k, c in result.curves.items()}})
