"""tfxattr: batched, TF-native attribution methods and metrics for Keras image classifiers.

``import tfxattr`` in a program or notebook imports everything. The ``tfxattr`` command imports only what its
subcommand needs, so ``tfxattr --help`` answers without TensorFlow: the names below are then loaded on first use
(``__getattr__``).
"""
from .lazy import lazy_attribute
from .quiet import quiet_command_line, started_as_command

quiet_command_line()  # the `tfxattr` command only: hide TensorFlow's log lines before TensorFlow is imported

__version__ = "0.1.0"

#: public name -> the submodule defining it (imported on first use)
_PUBLIC = {"explain": "explain", "Explanation": "explanation", "METHODS": "methods", "Method": "methods",
           "get_method": "methods", "register": "methods", "ModelAdapter": "models", "as_model": "models",
           "ModelOptions": "models", "export": "serving", "explainer_model": "serving", "plot": "figures"}


def __getattr__(name):
    value = globals()[name] = lazy_attribute(__name__, _PUBLIC, name)
    return value


def list_methods() -> dict:
    """Name -> one-line summary of every registered method."""
    from .methods import METHODS

    return {name: spec.summary for name, spec in sorted(METHODS.items())}


if not started_as_command():  # a program or notebook: everything now, as it always was
    from . import evaluation  # noqa: E402, F401 - tfxattr.evaluation, as every public subpackage, is imported
    from .explain import explain  # noqa: E402
    from .explanation import Explanation  # noqa: E402
    from .figures import plot  # noqa: E402
    from .methods import METHODS, Method, get_method, register  # noqa: E402
    from .models import ModelAdapter, ModelOptions, as_model  # noqa: E402
    from .serving import explainer_model, export  # noqa: E402

__all__ = ["explain", "Explanation", "as_model", "ModelAdapter", "ModelOptions", "METHODS", "Method", "get_method",
           "register", "list_methods", "export", "explainer_model", "plot"]
