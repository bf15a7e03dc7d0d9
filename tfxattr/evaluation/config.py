"""The options of an evaluation run, checked once: :class:`EvaluationConfig`."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from .. import checks
from ..checks import boolean, known_keys, one_of, positive_int
from ..metrics.result import AGGREGATIONS
from ..models.options import class_name_list
from ..visualize import REDUCTIONS
from .datasets import RESIZE

TARGETS = ("label", "predicted")
#: "local": one process (the default); "beam": an Apache Beam pipeline (tfxattr.evaluation.beam)
RUNNERS = ("local", "beam")
#: "auto": sum of |a| over channels, except single-channel maps (Grad-CAM, IIA, XRAI), kept as they are
MAP_REDUCTIONS = ("auto",) + tuple(REDUCTIONS)


@dataclass(frozen=True)
class EvaluationConfig:
    """How :func:`~tfxattr.evaluation.evaluate` runs (everything but what it runs on).

    ``correct_only``: keep only images the model classifies correctly (IDGI). ``targets``: explain the
    "label" or the "predicted" class. ``limit``: read only the first ``limit`` images. ``weights``:
    Keras applications' weights ("imagenet", "none" = random, or a file). ``batch_size``: images through
    the model at once (memory bound); ``images_per_batch``: images attributed together; ``chunk_size``:
    images read and fitted to a model at a time. ``split``, ``data_dir``, ``manual_dir``: for tfds data.
    ``resize``: "crop" or "stretch" to a model's input size. ``reduce``: channel reduction of (N,H,W,C)
    attributions to maps (:data:`MAP_REDUCTIONS`). ``report``: write ``report.md`` at the end;
    ``aggregation``: its per-score overrides (e.g. {"aic": "mean"}). ``log``: where messages go
    (default: stderr). ``pixel_range``: the range of the data's pixels when it is not the models' own
    (e.g. (0, 1) for float arrays); ``input_range``: the range the models read, for models that do not
    declare it (a model spec's ``input_range=`` option wins); ``class_names``: the models' class names
    (one per class, or a comma-separated string; a model spec's ``class_names=`` wins). See
    ``tfxattr.as_model`` for what the two ranges do. ``runner``: "local" (one process) or "beam"
    (an Apache Beam pipeline, shards of ``chunk_size`` images; :mod:`tfxattr.evaluation.beam`) with
    ``workers`` processes on the DirectRunner and ``beam_options`` ({name: value}, any ``PipelineOptions``:
    another runner, its project, ...). ``devices``: split each chunk across a ``MirroredStrategy`` over that
    many devices (GPUs, else logical CPU devices, which must be set up before TensorFlow initialises:
    :func:`tfxattr.models.mirrored_strategy`); None: the default device. ``jobs``: processes for the
    metrics' per-image CPU work (SIC/AIC's bokeh images and WebP sizes, ROAD's imputations; the metrics
    registered ``parallel``), one pool started per run (:mod:`tfxattr.parallel`); None: every core the process
    may use; the same numbers for every value. The local runner only (Beam parallelises with ``workers``).
    """
    correct_only: bool = False
    targets: str = "label"
    limit: Optional[int] = None
    weights: Optional[str] = "imagenet"
    batch_size: int = 32
    images_per_batch: int = 16
    split: str = "validation"
    data_dir: Optional[str] = None
    manual_dir: Optional[str] = None
    resize: str = "crop"
    reduce: str = "auto"
    seed: int = 0
    progress: bool = True
    report: bool = True
    aggregation: Optional[Dict[str, str]] = None
    chunk_size: int = 256
    log: Optional[Callable[[str], None]] = None
    pixel_range: Optional[Tuple[float, float]] = None
    input_range: Optional[Tuple[float, float]] = None
    class_names: Optional[Tuple[str, ...]] = None
    runner: str = "local"
    workers: int = 1
    beam_options: Optional[Dict[str, object]] = None
    devices: Optional[int] = None
    jobs: Optional[int] = None

    def __post_init__(self):
        boolean(self.correct_only, "correct_only")
        one_of(self.targets, "targets", TARGETS)
        positive_int(self.limit, "limit", allow_none=True)
        positive_int(self.devices, "devices", allow_none=True)
        positive_int(self.jobs, "jobs", allow_none=True)
        for name in ("batch_size", "images_per_batch", "chunk_size"):
            positive_int(getattr(self, name), name)
        for name in ("weights", "data_dir", "manual_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise ValueError(f"{name} must be a string, a path or None, got {value!r}")
        if not isinstance(self.split, str) or not self.split:
            raise ValueError(f"split must be a non-empty string, got {self.split!r}")
        one_of(self.resize, "resize", RESIZE)
        one_of(self.reduce, "reduce", MAP_REDUCTIONS)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        boolean(self.progress, "progress")
        boolean(self.report, "report")
        if self.aggregation is not None:
            if not isinstance(self.aggregation, dict):
                raise ValueError(f"aggregation must be a dict of score -> mean|median, got {self.aggregation!r}")
            for how in self.aggregation.values():
                one_of(how, "aggregation values", AGGREGATIONS)
        if self.pixel_range is not None:
            object.__setattr__(self, "pixel_range", checks.pixel_range(self.pixel_range))
        if self.input_range is not None:
            object.__setattr__(self, "input_range", checks.pixel_range(self.input_range, "input_range"))
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(class_name_list(self.class_names)))
        one_of(self.runner, "runner", RUNNERS)
        positive_int(self.workers, "workers")
        if self.beam_options is not None:
            if not isinstance(self.beam_options, dict) or not all(isinstance(k, str) and k
                                                                   for k in self.beam_options):
                raise ValueError(f"beam_options must be a dict of PipelineOptions names -> values, "
                                 f"got {self.beam_options!r}")
            if self.runner != "beam":
                raise ValueError("beam_options are given but runner is not 'beam'")
        if self.devices and self.runner == "beam":
            raise ValueError("devices splits batches in one process (runner='local'); with runner='beam' give "
                             "workers instead (each Beam worker uses its own device)")
        if self.log is not None and not callable(self.log):
            raise ValueError(f"log must be a function of one string or None, got {self.log!r}")

    def with_options(self, **options) -> "EvaluationConfig":
        """A copy with ``options`` replacing fields (checked again); an unknown name raises ValueError."""
        known_keys(options, FIELDS, "option", "evaluate")
        return dataclasses.replace(self, **options) if options else self


FIELDS = tuple(f.name for f in dataclasses.fields(EvaluationConfig))
