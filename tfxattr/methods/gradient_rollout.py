"""Gradient Rollout (Barkan et al., ICCV 2023, Sec. 3.4; IIA's integrand for ViTs): see :mod:`.rollout`."""
from __future__ import annotations

from .rollout import AttentionMethod, gradient_weighted, rollout


class GradientRollout(AttentionMethod):
    """Attention Rollout with each attention matrix replaced by ``mean_h [A * dA]^+`` (the IIA authors'
    repository: positive part per head, head mean, + identity, rows normalised, every block)."""
    name = "gradient_rollout"
    summary = "Gradient Rollout (IIA's ViT integrand, Barkan et al. 2023) on keras-hub ViTs"

    def token_map(self, chain, x, targets):
        _, attentions, gradients = chain.explained_and_gradients(x, targets)
        return rollout([gradient_weighted(a, g) for a, g in zip(attentions, gradients)], chain.prefix)
