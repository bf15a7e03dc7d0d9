"""Generic Attention-model Explainability (Chefer et al., ICCV 2021, Eq. 5-6), self-attention rule, on
keras-hub ViTs: see :mod:`.rollout`."""
from __future__ import annotations

from .rollout import AttentionMethod, gae, gradient_weighted


class GAE(AttentionMethod):
    """``R = I``; ``R <- R + mean_h [dA * A]^+ R`` over the blocks; the class token's row."""
    name = "gae"
    summary = "GAE: gradient-weighted attention relevance (Chefer et al. 2021) on keras-hub ViTs"

    def token_map(self, chain, x, targets):
        _, attentions, gradients = chain.explained_and_gradients(x, targets)
        return gae([gradient_weighted(a, g) for a, g in zip(attentions, gradients)], chain.prefix)
