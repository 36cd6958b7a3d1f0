"""What a model believes beyond its best answer, for a batch: each word's tag
distribution and the intent distribution (distillation's targets, the uncertainty
measures of active learning), the probability of the best tag sequence, and the n most
probable sequences with the confidences of their spans (n-best answers).

A CRF's word distributions are its marginals, a softmax head's its probabilities; an
ensemble's are its members' means. A sequence's log-probability is exact for a CRF (its
score minus log Z, over an ensemble's averaged potentials); for a softmax head it is the
sum of the words' log-probabilities, the probability of the sequence were the words'
choices independent (they are not: an approximation, and the same k-best Viterbi with no
transition scores finds the n best sequences of it). A seq2seq decoder's sequences
would need a beam search: it has no n-best.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from slotfill.data.batching import Batch
from slotfill.models.crf import (
    CRFHead,
    ForwardAlgorithm,
    k_best_viterbi,
    sequence_score,
    viterbi,
    without_forbidden,
)
from slotfill.models.ensemble import Ensemble
from slotfill.models.heads import SoftmaxHead


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
    potentials = _crf_potentials(model)
    scores = scores.float()
    if potentials is None:
        log_probs = scores.log_softmax(-1)  # (B, T, K)
        best, tags = log_probs.max(-1)  # (B, T)
        real = torch.ones_like(best) if batch.mask is None else batch.mask.to(best.dtype)
        return tags, (best * real).sum(1), intents
    trans, start, end = potentials
    tags = viterbi(scores, batch.mask, trans, start, end)  # (B, T)
    log_z = ForwardAlgorithm.apply(scores, trans, start, end, batch.mask)  # (B,)
    return tags, sequence_score(scores, tags, batch.mask, trans, start, end) - log_z, intents


def has_n_best(model: nn.Module) -> bool:
    """Whether `n_best` applies: a CRF or softmax tag head (an ensemble's members')."""
    members = model.members if isinstance(model, Ensemble) else [model]
    return all(isinstance(m.head, (CRFHead, SoftmaxHead)) for m in members)


@torch.no_grad()
def n_best(model: nn.Module, batch: Batch, n: int) -> tuple[Tensor, Tensor]:
    """The n most probable tag sequences (B, n, T), best first, and their
    log-probabilities (B, n); -inf marks the ranks beyond the sequences there are (for a
    CRF, those its tag scheme allows; for a softmax head, every sequence, as its best
    answer ignores the scheme too). The first is the best path (`best_path`) unless two
    sequences score exactly the same. One forward pass."""
    scores, _ = model.outputs(batch)  # (B, T, K); an ensemble's: averaged
    scores = scores.float()
    potentials = _crf_potentials(model)
    if potentials is None:
        log_probs = scores.log_softmax(-1)  # (B, T, K)
        K = log_probs.size(2)
        none = log_probs.new_zeros(K)  # no transition, start or end scores
        return k_best_viterbi(log_probs, batch.mask, none.expand(K, K), none, none, n)
    trans, start, end = potentials
    tags, total = k_best_viterbi(scores, batch.mask, *without_forbidden(trans, start, end), n)
    log_z = ForwardAlgorithm.apply(scores, trans, start, end, batch.mask)  # (B,)
    return tags, total - log_z.unsqueeze(1)


@torch.no_grad()
def n_best_confidences(model: nn.Module, batch: Batch, tags: Tensor, spans: Tensor
                       ) -> Tensor:
    """The confidence of spans of `n_best` sequences, as `decode_with_confidence` gives
    the best's: (N,) for tags (B, n, T) and spans (N, 4) long: row, rank, start, end
    (exclusive). Under a CRF a span's probability (the same in every sequence that holds
    it), under a softmax head the product of its words' probabilities of its tags; an
    ensemble's is its members' mean. One forward pass per member, and the head's
    span_confidence once per rank, so that the best sequence's spans get exactly the
    best answer's numbers."""
    members = model.members if isinstance(model, Ensemble) else [model]
    found = []
    for member in members:
        states, _ = member.read(batch)
        mine = torch.zeros(len(spans), device=tags.device)  # (N,)
        for rank in spans[:, 1].unique().tolist():
            at = spans[:, 1] == rank
            mine[at] = member.head.span_confidence(states, batch.mask, tags[:, rank],
                                                   spans[at][:, [0, 2, 3]])
        found.append(mine)
    return torch.stack(found).mean(0)  # as Ensemble.decode_with_confidence averages


def _crf_potentials(model: nn.Module) -> tuple[Tensor, Tensor, Tensor] | None:
    """The transition, start and end scores Viterbi reads (an ensemble's averaged), or
    None for a softmax head."""
    if isinstance(model, Ensemble):
        return model.potentials() if model.crf else None
    return model.head.potentials() if isinstance(model.head, CRFHead) else None
