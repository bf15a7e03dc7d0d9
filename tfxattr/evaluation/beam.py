"""The evaluation as an Apache Beam pipeline: shards of images scored in parallel, on any Beam runner.

>>> evaluate("shapes:64", ["demo"], ["ig+idgi"], ["insertion"], "runs/x", runner="beam", workers=2)

``tfxattr eval ... --runner beam --workers N --beam-option KEY=VALUE``. The pipeline is
``Create(every (model, shard)) | Reshuffle | ParDo(ScoreShards)``: a shard is chunk ``k`` of
``chunk_size`` images of the data (:meth:`~tfxattr.evaluation.datasets.Source.chunk_at`).
:class:`ScoreShards` loads the data source and every model once per worker (``DoFn.setup``), runs
:func:`~tfxattr.evaluation.shards.shard_records` on its shard — the computation the local runner runs on
the same chunks, so the numbers are the same — and writes each method's records of the shard as one part
file, all or nothing (:func:`~tfxattr.evaluation.store.write_part`). Keys already in the store are skipped,
so a killed pipeline started again computes what is missing; a shard written twice (a retried bundle, or
workers of a killed run that finished late) is counted once, because readers keep the first record of a key.

Without ``beam_options`` the pipeline runs on the DirectRunner in ``multi_processing`` mode with ``workers``
processes; ``beam_options`` ({name: value}; True for a switch) are any ``PipelineOptions``, so the same call
runs on Dataflow, Flink or Spark when the data, the models and ``out`` are paths every worker can read and
write (eval/README.md, "Distributed evaluation").

The local worker processes share this machine's cores (:func:`local_worker_threads`): each runs TensorFlow
on its share of them, set in ``DoFn.setup`` before its first op (one TensorFlow per core, not ``workers``
pools of every core fighting for them), and leaves without Python's teardown of TensorFlow once its work is
written (:func:`_exit_at_once`: the runner closes its workers one after the other, waiting ~2 s for each).
Workers of any other runner own their machines and are left as they are.
"""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import math
import os
import socket
import sys
from dataclasses import replace
from typing import List, Optional

from ..checks import did_you_mean
from ..parallel import available_cores
from .datasets import load_data
from .folders import label_map
from .loading import load_model
from .shards import RANDOM_WEIGHTS_WARNING, _method, _shown_name, method_label, shard_records, skipped_records
from .store import NAMED_KINDS, iter_records, remove_unfinished_parts, result_key, write_part
from .summary import merge_shards

#: PipelineOptions the beam runner sets unless ``beam_options`` names them (``direct_num_workers`` = workers)
DEFAULT_OPTIONS = {"runner": "DirectRunner", "direct_running_mode": "multi_processing",
                   "default_sdk_harness_log_level": "ERROR"}


@contextlib.contextmanager
def quiet_beam_import():
    """Import Apache Beam without its "apitools not found ..." line: Beam logs it through the root logger when
    the BigQuery client is missing, which a local run does not need. Logging is left as it was (a root
    logger without handlers stays without one: ``logging.warning`` would otherwise add a stderr handler)."""
    root = logging.getLogger()
    guard, disabled = logging.NullHandler(), logging.root.manager.disable
    root.addHandler(guard)
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(disabled)
        root.removeHandler(guard)


def pipeline_options(workers: int, beam_options=None):
    """``PipelineOptions`` from :data:`DEFAULT_OPTIONS`, ``workers`` and ``beam_options`` (which win); a name
    Beam does not know raises ValueError with the closest known ones."""
    with quiet_beam_import():
        from apache_beam.options.pipeline_options import PipelineOptions

    given = dict(beam_options or {})
    known = PipelineOptions([]).get_all_options()
    unknown = sorted(set(given) - set(known))
    if unknown:
        hints = "".join(did_you_mean(u, known) for u in unknown)
        raise ValueError(f"beam_options: {unknown} are not Apache Beam pipeline options{hints}")
    values = {**DEFAULT_OPTIONS, "direct_num_workers": workers, **given}
    flags = [f"--{k}" if v is True else f"--{k}={v}" for k, v in values.items() if v is not False and v is not None]
    return PipelineOptions(flags)


def local_worker_threads(options) -> Optional[int]:
    """TensorFlow threads of each worker process of the local DirectRunner in ``multi_processing`` mode: the
    cores this process may use, shared among the workers (at least one each). None for every other runner
    (Dataflow, Flink and Spark workers own their machines; the DirectRunner's in-memory and multi-threading
    modes run in this process, whose TensorFlow is already running)."""
    values = options.get_all_options()
    if values["runner"] not in (None, "DirectRunner") or values["direct_running_mode"] != "multi_processing":
        return None
    workers = values["direct_num_workers"] or available_cores()  # Beam reads 0 as "one per core"
    return max(1, available_cores() // workers)


def _share_the_cores(threads: int) -> None:
    """Run this process's TensorFlow on ``threads`` threads (intra-op: one op's work; inter-op: ops at
    once), so that the local workers together use the machine's cores once. A TensorFlow that already ran
    an op keeps its pools (it cannot change them); that only costs speed."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        logging.getLogger(__name__).info("TensorFlow already initialised: its threads are left as they are")


def _exit_at_once() -> None:
    """An ``atexit`` hook of a local worker process: once the worker's Python is exiting normally (every
    part file written and closed, the Beam harness shut down), end the process without Python's teardown
    of TensorFlow's modules (~2 s, which the DirectRunner waits for worker by worker). A process exiting
    on an uncaught exception (``sys.last_value``) exits the usual way, with its error code."""
    if hasattr(sys, "last_value"):
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):  # closed or replaced streams: nothing left to flush
            pass
    os._exit(0)


def part_name(model: str, shard: int, method: str) -> str:
    """The stem of a part file: short hashes of the model and method labels (any characters) and the shard."""
    def short(text):
        return hashlib.sha1(text.encode()).hexdigest()[:10]
    return f"{short(model)}-s{shard:06d}-{short(method)}"


def _dofn_base():
    with quiet_beam_import():
        import apache_beam as beam

    return beam.DoFn


class ScoreShards(_dofn_base()):
    """Scores (model index, shard index) elements; each method's records of a shard go to one part file."""

    def __init__(self, data, models, methods, metric_specs, config, store: str, shards: int,
                 local_threads: Optional[int] = None):
        super().__init__()
        self.data, self.models, self.methods, self.metric_specs = data, models, methods, metric_specs
        self.config, self.store, self.shards = config, store, shards
        # a local worker process shares the cores (local_worker_threads); never the process that built the pipeline
        self.local_threads, self.parent = local_threads, os.getpid()

    def setup(self):
        if self.local_threads and os.getpid() != self.parent:
            _share_the_cores(self.local_threads)
            atexit.register(_exit_at_once)
        c = self.config
        self.source = load_data(self.data, c.limit, c.split, c.data_dir, c.manual_dir)
        self.loaded = [load_model(m, c.weights, c.batch_size, c.pixel_range, input_range=c.input_range,
                                  class_names=c.class_names) for m in self.models]
        self.remaps = [label_map(self.source, m.adapter.class_names, m.label) for m in self.loaded]
        self.method_objs = [(method_label(m), _method(m), _shown_name(m)) for m in self.methods]
        self.done, self.named = set(), set()
        for r in iter_records(self.store):  # what the store held when this worker started
            if r.get("kind") == "result":
                self.done.add(result_key(r))
            elif r.get("kind") in NAMED_KINDS:
                self.named.add((r["kind"], r.get("model") or r.get("metric") or r.get("image")))
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def process(self, element):
        index, shard = element
        loaded = self.loaded[index]
        chunk = self.source.chunk_at(shard, self.config.chunk_size)
        named = set(self.named)  # becomes this worker's only once the shard's parts are written
        buffer, method, written = skipped_records(chunk, named), None, []
        named |= {("skipped", r["image"]) for r in buffer}
        for record in shard_records(loaded, chunk, shard, self.shards, self.remaps[index], self.method_objs,
                                    self.metric_specs, self.config, self.done, named, self.source.name):
            if record["kind"] == "result":
                if method is not None and record["method"] != method:
                    written += self._write(loaded.label, shard, method, buffer)
                    buffer = []
                method = record["method"]
            elif record["kind"] == "shard":
                record = {**record, "worker": self.worker}
            buffer.append(record)
        written += self._write(loaded.label, shard, method or "-", buffer)
        self.named |= named
        self.done.update(written)
        yield element

    def _write(self, model: str, shard: int, method: str, records: List[dict]) -> List[tuple]:
        write_part(self.store, part_name(model, shard, method), records)
        return [result_key(r) for r in records if r["kind"] == "result"]


@contextlib.contextmanager
def _workers_import_this_tfxattr():
    """Local worker processes (DirectRunner) import the tfxattr this process runs, not another copy that
    happens to be installed: its parent directory goes first on PYTHONPATH while the pipeline runs."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tfxattr/evaluation/beam.py
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = root + (os.pathsep + old if old else "")
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def run_beam(data, models, methods, metric_specs, store, source, config, summary, log):
    """Run the evaluation of :func:`~tfxattr.evaluation.runner.evaluate` as a Beam pipeline on ``store``
    (an open ResultStore: its lock keeps other runs out while the workers write part files); then record
    each model whose every shard is in the store as one "model" record, like the local runner does."""
    with quiet_beam_import():
        import apache_beam as beam

    if any(not isinstance(m, str) for m in models):
        raise ValueError("runner='beam' needs models given by name or path (workers load them), not model objects")
    if source.size is None:
        raise ValueError(f"runner='beam' needs data of known size to cut it into shards; {source.name!r} has none: "
                         "give limit")
    options = pipeline_options(config.workers, config.beam_options)
    shards = math.ceil(source.size / config.chunk_size)
    remove_unfinished_parts(store.path)  # left by workers of a killed run; no worker runs now
    before = set(store.done)
    threads, workers = local_worker_threads(options), options.get_all_options()["direct_num_workers"]
    fn = ScoreShards(data, list(models), list(methods), metric_specs, replace(config, log=None, progress=False),
                     store.path, shards, threads)
    log(f"beam: {len(models)} model(s) x {shards} shard(s) of up to {config.chunk_size} images, "
        f"runner {options.get_all_options()['runner']}"
        + (f", {workers} local worker(s) of {threads} TensorFlow thread(s)" if threads else ""))
    if threads and workers and (len(models) * shards) % workers:
        # the DirectRunner deals the elements out to its workers once, in turn: no worker takes over another's
        log(f"beam: {len(models) * shards} (model, shard) pairs for {workers} workers: the last round leaves "
            f"{workers - (len(models) * shards) % workers} worker(s) idle; a chunk_size giving a multiple of "
            f"{workers} uses them all")
    with _workers_import_this_tfxattr(), beam.Pipeline(options=options) as pipeline:
        _ = (pipeline | beam.Create([(m, k) for m in range(len(models)) for k in range(shards)])
             | beam.Reshuffle() | beam.ParDo(fn))
    passes, after = {}, set()
    for r in iter_records(store.path):
        if r.get("kind") == "shard":
            passes.setdefault(r["model"], {}).setdefault(r["shard"], r)
        elif r.get("kind") == "result":
            after.add(result_key(r))
        elif r.get("kind") == "skipped":
            summary.skipped_files.setdefault(r["image"], r.get("reason", ""))
    labels = set(passes)
    summary.computed = len(after - before)
    summary.already_done = len({k for k in before if k[0] in labels})
    for label, parts in passes.items():
        merged = merge_shards(parts.values())
        if merged.pop("finished"):
            store.append({k: v for k, v in merged.items() if k not in ("already_done", "worker")})
        if merged.get("random_weights"):
            summary.random_weights.append(label)
            log(RANDOM_WEIGHTS_WARNING.format(models=label))
        log(f"{label}: {merged['images']} images"
            + (f", {len(merged['excluded'])} excluded as misclassified" if config.correct_only else ""))
