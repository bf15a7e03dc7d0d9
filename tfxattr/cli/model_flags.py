"""The model flags every command shares (explain, eval, export): one flag per model keyword, declared once
in :class:`tfxattr.models.options.ModelOptions` (its doc, default and text form)."""
from __future__ import annotations

import dataclasses

from ..models.options import TEXT_OPTIONS, add_model_flags, class_names_from_text, model_flags

#: ``--class-names FILE_OR_LIST`` as text -> names (kept under its old name for callers of the CLI package)
read_class_names = class_names_from_text


def eval_model_flags() -> tuple:
    """The model flags of eval: the model options an EvaluationConfig carries (the others go in a model spec,
    e.g. ``--models demo:head=softmax``)."""
    from ..evaluation.config import EvaluationConfig

    carried = {f.name for f in dataclasses.fields(EvaluationConfig)}
    return tuple(name for name in TEXT_OPTIONS if name in carried)


__all__ = ["add_model_flags", "model_flags", "eval_model_flags", "read_class_names", "TEXT_OPTIONS"]
