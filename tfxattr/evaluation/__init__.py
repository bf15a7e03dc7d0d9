"""Evaluation: score attribution methods with metrics on models over a data set (``tfxattr eval``).

* :mod:`~tfxattr.evaluation.config` — :class:`EvaluationConfig`, the run's options, checked once;
* :mod:`~tfxattr.evaluation.runner` — :func:`evaluate`, the resumable methods x metrics x models loop;
* ``name:key=value,...`` specs (:mod:`tfxattr.specs`); :mod:`~.datasets` — data sources;
* :mod:`~tfxattr.evaluation.loading` — models by spec; :mod:`~.store` — the store (``results.jsonl`` and
  part files; :func:`load_results` reads any store);
* :mod:`~tfxattr.evaluation.beam` — the same evaluation as an Apache Beam pipeline (``runner="beam"``;
  imported when used: Apache Beam is the ``beam`` extra);
* :mod:`~tfxattr.evaluation.report` — Markdown tables; :mod:`~.plots` — PNG curves.

The sanity checks (``cascading_randomization``, ``sigma_perturbation``) are metrics like the others
(:mod:`tfxattr.metrics.sanity`): the runner runs them.
"""
from ..specs import Spec, parse_spec
from .config import TARGETS, EvaluationConfig
from .datasets import RESIZE, Chunk, Source, fit_to_input, load_data
from .loading import LoadedModel, check_model, load_model
from .plots import line_plot, nice_ticks
from .report import fmt, markdown_table, pivot_table, write_report
from .runner import RunSummary, check_config, evaluate
from .shards import method_label
from .store import STORE_NAME, ResultStore, iter_records, json_safe, load_results, read_records, result_key, rounded
from .summary import load_store, summarize

__all__ = ["evaluate", "EvaluationConfig", "RunSummary", "TARGETS", "RESIZE", "method_label",
           "check_config", "Spec", "parse_spec", "Source", "Chunk", "load_data", "fit_to_input", "LoadedModel",
           "check_model", "load_model", "STORE_NAME", "ResultStore", "read_records", "iter_records", "load_results",
           "result_key", "json_safe",
           "rounded", "write_report", "load_store", "summarize", "pivot_table", "markdown_table", "fmt",
           "line_plot", "nice_ticks"]
