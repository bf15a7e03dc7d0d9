"""Attention Rollout (Abnar & Zuidema, ACL 2020, Sec. 3) on keras-hub ViTs: see :mod:`.rollout`."""
from __future__ import annotations

from .rollout import AttentionMethod, head_mean, rollout


class AttentionRollout(AttentionMethod):
    """Head-mean attention plus identity, rows normalised, multiplied over all blocks; the class token's
    row. Class-agnostic: the map does not depend on the target."""
    name = "attention_rollout"
    summary = "Attention Rollout (Abnar & Zuidema 2020) on keras-hub ViTs; class-agnostic"
    class_specific = False

    def token_map(self, chain, x, targets):
        _, attentions = chain.run(x)
        return rollout([head_mean(a) for a in attentions], chain.prefix)
