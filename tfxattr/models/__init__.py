"""Models: where they come from (sources), what scalar is explained (objective), the adapter that
gives its values and gradients in chunks, the evaluator contracts, and splitting at layers."""
from .adapter import DEFAULT_BATCH_SIZE, ModelAdapter, as_model
from .contracts import AdaptivePath, GradientEvaluator, KerasEvaluator, Path

__all__ = ["DEFAULT_BATCH_SIZE", "ModelAdapter", "as_model", "GradientEvaluator", "KerasEvaluator", "Path",
           "AdaptivePath"]
