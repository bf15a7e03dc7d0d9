"""Learn to Rank (Schinagl et al. 2026): an explainer network trained on differentiable deletion and
insertion AUCs, so an explanation costs one forward pass.

``soft_deletion_auc`` / ``soft_insertion_auc`` (:mod:`.auc`, over the soft sort of :mod:`.sort`);
``build_explainer`` / ``load_explainer`` (:mod:`.explainer`); ``train_explainer`` (:mod:`.train`).
``explain(model, images, method="learned", explainer=...)`` runs a trained explainer.
"""
from .auc import soft_deletion_auc, soft_insertion_auc
from .explainer import build_explainer, load_explainer
from .sort import gumbel_sinkhorn
from .train import train_explainer

__all__ = ["build_explainer", "gumbel_sinkhorn", "load_explainer", "soft_deletion_auc", "soft_insertion_auc",
           "train_explainer"]
