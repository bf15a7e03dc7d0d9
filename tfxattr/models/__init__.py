"""Models: how they are read (options), where they come from (sources), what scalar is explained
(objective), the adapter that gives its values and gradients in chunks and how it is built (build,
introspect), the evaluator contracts, and splitting at layers (layers/).

The names below load on first use (:mod:`tfxattr.lazy`), so that ``tfxattr.models.options`` and
``tfxattr.models.sources`` (the command line's model flags and ``tfxattr models``) import without TensorFlow.
"""
from ..lazy import lazy_attribute

#: public name -> the submodule defining it
_PUBLIC = {"DEFAULT_BATCH_SIZE": "options", "ModelOptions": "options", "ModelAdapter": "adapter",
           "as_model": "build", "GradientEvaluator": "contracts", "KerasEvaluator": "contracts", "Path": "contracts",
           "AdaptivePath": "contracts", "logical_cpus": "devices", "mirrored_strategy": "devices",
           "split_model": "layers", "valid_split_layers": "layers", "Objective": "objective", "SOURCES": "sources",
           "Loaded": "sources", "ModelSource": "sources", "register_source": "sources"}

__all__ = list(_PUBLIC)


def __getattr__(name):
    value = globals()[name] = lazy_attribute(__name__, _PUBLIC, name)
    return value
