"""tfxattr: batched, TF-native attribution methods and metrics for Keras image classifiers."""
from . import evaluation  # noqa: F401 - registers the sanity-check metrics in tfxattr.metrics.METRICS
from .explain import explain
from .explanation import Explanation
from .methods import METHODS, Method, get_method, register
from .models import ModelAdapter, as_model

__version__ = "0.1.0"


def list_methods() -> dict:
    """Name -> one-line summary of every registered method."""
    return {name: spec.summary for name, spec in sorted(METHODS.items())}


__all__ = ["explain", "Explanation", "as_model", "ModelAdapter", "METHODS", "Method", "get_method", "register",
           "list_methods"]
