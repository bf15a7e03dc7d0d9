"""Serving: explanations as SavedModel signatures that run with TensorFlow alone (issue 10).

``export(model, path, methods=[...])`` writes a SavedModel with ``serving_default`` (scores) and one
``explain_<method>`` signature per method; ``explainer_model(model, method)`` is the same computation as
a callable. The path loop, the aggregator and the chunking are ``tf.while_loop``s (:mod:`.graph`).
"""
from .export import Explainer, explainer_model, export, resolve_methods, signature_name
from .methods import NOT_EXPORTABLE, NotExportable, noisy_copies

__all__ = ["export", "explainer_model", "Explainer", "NotExportable", "NOT_EXPORTABLE", "signature_name",
           "resolve_methods", "noisy_copies"]
