"""Interoperability with other attribution toolkits.

* :mod:`tfxattr.interop.pair` — PAIR ``saliency``, both ways: our models as a ``call_model_function``,
  a ``call_model_function`` as our evaluator, and every tfxattr method as a ``CoreSaliency``.
"""
from .pair import (
    CMF_TARGET,
    TARGET_KEYS,
    BlurIGIDGI,
    GuidedIGIDGI,
    IntegratedGradientsIDGI,
    PairEvaluator,
    TfxattrSaliency,
    call_model_function,
)

__all__ = ["CMF_TARGET", "TARGET_KEYS", "BlurIGIDGI", "GuidedIGIDGI", "IntegratedGradientsIDGI", "PairEvaluator",
           "TfxattrSaliency", "call_model_function"]
