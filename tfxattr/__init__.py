"""tfxattr: batched, TF-native attribution methods and metrics for Keras image classifiers."""
from .quiet import quiet_command_line

quiet_command_line()  # the `tfxattr` command only: hide TensorFlow's log lines before TensorFlow is imported

from . import evaluation  # noqa: E402, F401 - registers the sanity-check metrics in tfxattr.metrics.METRICS
from .explain import explain  # noqa: E402
from .explanation import Explanation  # noqa: E402
from .methods import METHODS, Method, get_method, register  # noqa: E402
from .models import ModelAdapter, as_model  # noqa: E402
from .serving import explainer_model, export  # noqa: E402

__version__ = "0.1.0"


def list_methods() -> dict:
    """Name -> one-line summary of every registered method."""
    return {name: spec.summary for name, spec in sorted(METHODS.items())}


__all__ = ["explain", "Explanation", "as_model", "ModelAdapter", "METHODS", "Method", "get_method", "register",
           "list_methods", "export", "explainer_model"]
