"""Serving: explanations as SavedModel signatures that run with TensorFlow alone.

``export(model, path, methods=[...])`` writes a SavedModel with ``serving_default`` (scores) and one
``explain_<method>`` signature per method; ``explainer_model(model, method)`` is the same computation as
a callable. There is no second implementation here: each signature traces the method's own
``attribute`` (the code ``explain()`` runs), whose chunk loops become ``tf.while_loop`` loops
(:mod:`tfxattr.batching`). This package holds only the SavedModel wrapper: signatures, input checks,
metadata.
"""
from ..inputs import NotExportable
from .export import Explainer, explainer_model, export, not_exportable, resolve_methods, signature_name

__all__ = ["export", "explainer_model", "Explainer", "NotExportable", "not_exportable", "signature_name",
           "resolve_methods"]
