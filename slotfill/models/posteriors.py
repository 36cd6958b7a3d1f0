"""What a model believes beyond its best answer, for a batch: each word's tag
distribution and the intent distribution (distillation's targets, the uncertainty
measures of active learning), and the probability of the best tag sequence.

A CRF's word distributions are its marginals, a softmax head's its probabilities; an
ensemble's are its members' means. The best sequence's log-probability is exact for a
CRF (its score minus log Z, over an ensemble's averaged potentials) and for a softmax
head (the sum of the words' log-probabilities).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from slotfill.data.batching import Batch
from slotfill.models.crf import CRFHead, ForwardAlgorithm, sequence_score, viterbi
from slotfill.models.ensemble import Ensemble


@torch.no_grad()
def distributions(model: nn.Module, batch: Batch, temperature: float = 1.0
                  ) -> tuple[Tensor, Tensor | None]:
    """Per-word tag distributions (B, T, K), 0 at padding, and the intent distribution
    (B, I) or None, at `temperature`."""
    members = model.members if isinstance(model, Ensemble) else [model]
    tags, intents = [], []
    for member in members:
        states, intent = member.read(batch)
        scores = member.head(states, batch.mask)  # (B, T, K)
        if isinstance(member.head, CRFHead):
            tags.append(member.head.marginals(scores, batch.mask, temperature))
        else:
            probs = (scores.float() / temperature).softmax(-1)
            tags.append(probs if batch.mask is None else probs * batch.mask.unsqueeze(2))
        if intent is not None:
            intents.append(member.intent_head.probabilities(intent, batch.mask,
                                                            temperature).float())
    return (torch.stack(tags).mean(0),
            torch.stack(intents).mean(0) if intents else None)


@torch.no_grad()
def best_path(model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor, Tensor | None]:
    """The best tag ids (B, T), their sequence's log-probability (B,), and the intent
    distribution (B, I) or None: one forward pass."""
    scores, intents = model.outputs(batch)  # an ensemble's: averaged
    if isinstance(model, Ensemble):
        crf, potentials = model.crf, model.potentials() if model.crf else None
    else:
        crf = isinstance(model.head, CRFHead)
        potentials = model.head.potentials() if crf else None
    scores = scores.float()
    if not crf:
        log_probs = scores.log_softmax(-1)  # (B, T, K)
        best, tags = log_probs.max(-1)  # (B, T)
        real = torch.ones_like(best) if batch.mask is None else batch.mask.to(best.dtype)
        return tags, (best * real).sum(1), intents
    trans, start, end = potentials
    tags = viterbi(scores, batch.mask, trans, start, end)  # (B, T)
    log_z = ForwardAlgorithm.apply(scores, trans, start, end, batch.mask)  # (B,)
    return tags, sequence_score(scores, tags, batch.mask, trans, start, end) - log_z, intents
