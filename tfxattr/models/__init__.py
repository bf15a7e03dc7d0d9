"""Models: where they come from (sources), what scalar is explained (objective), the adapter that
gives its values and gradients in chunks, the evaluator contracts, and splitting at layers."""
from .adapter import DEFAULT_BATCH_SIZE, ModelAdapter, as_model
from .contracts import AdaptivePath, GradientEvaluator, KerasEvaluator, Path
from .devices import logical_cpus, mirrored_strategy
from .layers import split_model, valid_split_layers
from .objective import Objective
from .sources import SOURCES, Loaded, ModelSource, register_source

__all__ = ["DEFAULT_BATCH_SIZE", "ModelAdapter", "as_model", "GradientEvaluator", "KerasEvaluator", "Path",
           "AdaptivePath", "Objective", "SOURCES", "Loaded", "ModelSource", "register_source", "split_model",
           "valid_split_layers", "logical_cpus", "mirrored_strategy"]
