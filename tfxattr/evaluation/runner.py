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
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional

import numpy as np

from ..checks import did_you_mean
from ..metrics import METRICS, get_metric
from ..models.devices import mirrored_strategy
from ..parallel import WorkerPool
from ..specs import Spec, parse_spec
from .config import EvaluationConfig
from .datasets import load_data
from .folders import label_map
from .loading import LoadedModel, check_model, load_model
from .report import write_report
from .shards import (
    RANDOM_WEIGHTS_WARNING,
    _method,
    _shown_name,
    method_label,
    model_fields,
    shard_records,
    skipped_records,
)
from .source import Source
from .store import STORE_NAME, ResultStore, json_safe
from .summary import load_store, short_model_names

#: where metrics that do not score maps of plain images (grid images) are run instead
ELSEWHERE = "use eval/rao_grids.py for grid localization"
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
    """Parsed metric specs; unknown (or retired) options and metrics that do not score maps of plain images
    refused, before anything runs (the options by the metric's own check, the one every call goes through)."""
    specs = [parse_spec(m, "metric") for m in metrics]
    for s in specs:
        metric = get_metric(s.name)
        metric.check_options(s.options)
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
    if (config.correct_only or config.targets == "label") and not source.has_labels:
        raise ValueError(f"data {source.name!r} has no labels: use targets='predicted' without correct_only")


def _nonempty(items, what):
    items = [items] if isinstance(items, (str, Spec)) else list(items or [])
    if not items:
        raise ValueError(f"{what} is empty: give at least one")
    return items


def _stderr(message: str):
    print(message, file=sys.stderr)


#: the probe that names each metric's scores before a run writes anything (a metric says them only once it has
#: run): one PROBE_SIZE x PROBE_SIZE image through a linear model of PROBE_CLASSES classes, an object in its middle
PROBE_SIZE, PROBE_CLASSES = 8, 3


def probe_score_names(metric_specs: List[Spec]) -> Optional[Dict[str, List[str]]]:
    """Metric label -> its score names, from running every metric of ``metric_specs`` (with its options) on
    a tiny probe; None when one of them cannot run there (then ``aggregation`` is checked on the first results)."""
    import tensorflow as tf

    from ..explanation import Explanation
    from ..models import as_model

    rng = np.random.default_rng(0)
    weights = tf.constant(rng.normal(size=(3, PROBE_CLASSES)), tf.float32)
    model = as_model(lambda x: tf.matmul(tf.reduce_mean(x, axis=(1, 2)), weights), input_shape=(PROBE_SIZE,) * 2 + (3,),
                     pixel_range=(0, 255), input_range=(0, 255))
    images = rng.uniform(0, 255, (1, PROBE_SIZE, PROBE_SIZE, 3)).astype(np.float32)
    maps, targets = rng.uniform(size=images.shape[:3]), np.zeros(1, np.int32)
    masks = np.zeros(images.shape[:3], bool)
    masks[:, PROBE_SIZE // 4:-PROBE_SIZE // 4, PROBE_SIZE // 4:-PROBE_SIZE // 4] = True
    names = {}
    for spec in metric_specs:
        metric, options = METRICS[spec.name], dict(spec.options)
        if metric.uses_labels:
            options.setdefault("labels", targets)
        given = maps if metric.consumes == "maps" else Explanation(
            attribution=np.repeat(maps[..., None], 3, -1), targets=targets, method="probe", options={}, run={},
            images=images, pixel_range=(0, 255))
        try:
            names[spec.label] = list(metric(model, images, given, targets=targets, masks=masks, **options).scores)
        except Exception:  # noqa: BLE001 - a metric the probe cannot feed: its scores are checked as they come
            return None
    return names


def evaluate(data, models, methods, metrics, out, config: Optional[EvaluationConfig] = None,
             **options) -> RunSummary:
    """Score every method with every metric on every model; results go to ``<out>/results.jsonl``.

    ``models``: "demo", Keras application names (optionally "name:weights=none|PATH"), .keras files,
    SavedModel dirs, or keras.Model / ModelAdapter objects. ``methods`` / ``metrics``: spec strings
    ("ig+idgi:steps=200", "insertion:baseline=blur") or Method instances. ``config``: an
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
    if config.aggregation:
        probed = probe_score_names(metric_specs)  # before anything is written: a typo does not leave a store
        if probed is not None:
            check_aggregation(config.aggregation, probed)
    out = check_writable(os.fspath(out))
    model_items = _nonempty(models, "models")
    for m in model_items:
        if isinstance(m, (str, Spec, tuple)):
            check_model(parse_spec(m, "model"), config.weights)
    source = load_data(data, config.limit, config.split, config.data_dir, config.manual_dir)
    _check_data(source, metric_specs, config)
    run_config = {"data": source.name, "target": config.targets,  # the stored key predates the glossary
                  "resize": config.resize, "reduce": config.reduce,
                  "seed": config.seed, "metrics": {s.label: json_safe(s.options) for s in metric_specs}}
    for name in ("pixel_range", "input_range", "class_names"):  # only when given: older stores still resume
        if getattr(config, name) is not None:
            run_config[name] = list(getattr(config, name))
    store_path = os.path.join(out, STORE_NAME)
    summary = RunSummary(store_path, None, 0, 0)
    with ResultStore(store_path) as store:
        check_config(store, run_config)
        if config.runner == "beam":
            from .beam import run_beam

            run_beam(data, model_items, [m for _, m, _ in method_objs], metric_specs, store, source, config,
                     summary, log)
            model_items = []
        # one pool of worker processes for the whole run, started before any model is loaded
        with WorkerPool(_jobs(config, metric_specs, model_items)) as pool:
            for model in model_items:
                loaded = load_model(model, config.weights, config.batch_size, config.pixel_range, strategy,
                                    config.input_range, config.class_names)
                if loaded.random_weights:
                    summary.random_weights.append(loaded.label)
                    log(RANDOM_WEIGHTS_WARNING.format(models=loaded.label))
                _run_model(store, loaded, source, method_objs, metric_specs, summary, config, log, pool)
    if config.report:
        check_aggregation(config.aggregation, stored_scores(store_path))
        summary.report = write_report(store_path, out, aggregation=config.aggregation, data=data)
    return summary


def _jobs(config: EvaluationConfig, metric_specs, model_items) -> int:
    """Worker processes for the run: ``config.jobs`` (None: every available core), 1 (none) when no model is
    run here or no metric has per-image CPU work to share out (``METRICS[name].parallel``)."""
    if not model_items or not any(METRICS[s.name].parallel for s in metric_specs):
        return 1
    return config.jobs


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
               log, pool=None):
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
                                        store.done, store.named, source.name, update, pool):
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


def _record_skipped(store, chunk, summary, log):
    """One "skipped" record per unreadable file (once per store), and a line in the log."""
    for image, reason in chunk.skipped.items():
        if image not in summary.skipped_files:
            log(f"skipped {image}: {reason}")
        summary.skipped_files[image] = reason
    for record in skipped_records(chunk, store.named):
        store.append(record)
