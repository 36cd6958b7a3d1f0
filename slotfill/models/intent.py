"""The intent head: the utterance's intent from the states the tagger gives it (B, T, H).

Two kinds of output (model.multi_intent):
- single-label (the default): one softmax over the label strings of the training data,
  `atis_flight#atis_airfare` being one more label;
- multi-label: a label joined by `#` is a set of atomic intents (intent_sets.py), with one
  sigmoid per atom; the predicted set holds the atoms above a threshold, and at least the
  most probable one, so an utterance always has an intent. Sets that training never
  shows (`atis_flight#atis_airline` on ATIS test) can be predicted; MixATIS-style corpora,
  with two or three intents per utterance, are what it is for.

Either reads the states pooled over the utterance (their maximum over real time steps),
or, with `per_token`, lets every word predict and averages their distributions (a soft
vote, Stack-Propagation, Qin et al. 2019). With `attend`, the pooled vector is joined by
an attention summary of the words, queried by the max-pooled utterance: the slot-gated
reading (model.intent_reads_slots, whose states carry each word's embedded tag
distribution, `SlotReader`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slotfill.models.intent_sets import IntentSets

SLOT_READING_SIZE = 50  # the embedded tag distribution the intent head reads


class SlotReader(nn.Module):
    """Each word's slot decision as the intent head reads it: the softmax of its tag
    scores (B, T, K), embedded -> (B, T, SLOT_READING_SIZE)."""

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        self.embedding = nn.Linear(num_tags, SLOT_READING_SIZE, bias=False)

    def forward(self, tag_scores: Tensor) -> Tensor:
        return self.embedding(tag_scores.float().softmax(-1).to(tag_scores.dtype))


class AttentionPooling(nn.Module):
    """A summary of the words (B, T, H) -> (B, H), weighted by their match with a query
    made from the max-pooled utterance; padded words get no weight."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.query = nn.Linear(size, size)
        self.key = nn.Linear(size, size, bias=False)

    def forward(self, states: Tensor, pooled: Tensor, mask: Tensor | None) -> Tensor:
        scores = torch.einsum("bh,bth->bt", self.query(pooled), self.key(states))
        scores = scores / math.sqrt(states.size(2))  # (B, T)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return torch.einsum("bt,bth->bh", scores.softmax(1), states)


class IntentHead(nn.Module):
    """Intent scores, probabilities, the predicted intent and its name.

    `labels`: the training label strings (Vocabs.intents); `multi`: one sigmoid per
    atomic intent, with `threshold`; `attend`: attention pooling beside the maximum."""

    def __init__(self, input_size: int, labels: Sequence[str], per_token: bool = False,
                 multi: bool = False, threshold: float = 0.5, attend: bool = False) -> None:
        super().__init__()
        self.labels = list(labels)
        self.sets = IntentSets(self.labels) if multi else None
        self.threshold = threshold
        self.per_token = per_token
        self.attention = AttentionPooling(input_size) if attend and not per_token else None
        pooled = input_size * (2 if self.attention is not None else 1)
        outputs = len(self.sets.atoms) if self.sets else len(self.labels)
        self.linear = nn.Linear(pooled, outputs)
        if self.sets:  # label id -> its atoms, (S, A); derived from the labels, not saved
            membership = torch.zeros(len(self.labels), outputs)
            for i, label in enumerate(self.labels):
                membership[i, self.sets.members(label)] = 1.0
            self.register_buffer("membership", membership, persistent=False)
        self.label_smoothing = 0.0  # a training option (train.label_smoothing)

    @property
    def multi(self) -> bool:
        return self.sets is not None

    def forward(self, states: Tensor, mask: Tensor | None) -> Tensor:
        """Intent scores: (B, I) for the utterance, or (B, T, I) per word."""
        if self.per_token:
            return self.linear(states)  # (B, T, I)
        if mask is not None:
            pooled = states.masked_fill(~mask.unsqueeze(2), float("-inf")).amax(dim=1)
        else:
            pooled = states.amax(dim=1)  # (B, H)
        if self.attention is not None:
            pooled = torch.cat([pooled, self.attention(states, pooled, mask)], dim=1)
        return self.linear(pooled)  # (B, I)

    def activate(self, scores: Tensor) -> Tensor:
        """Scores to probabilities: a softmax over labels, or each atom's sigmoid."""
        return scores.sigmoid() if self.multi else scores.softmax(dim=-1)

    def probabilities(self, scores: Tensor, mask: Tensor | None,
                      temperature: float = 1.0) -> Tensor:
        """The utterance's intent probabilities (B, I): the words' mean vote per token;
        the scores divided by `temperature` first."""
        if temperature != 1.0:
            scores = scores / temperature
        if not self.per_token:
            return self.activate(scores)
        votes = self.activate(scores)  # (B, T, I)
        if mask is None:
            return votes.mean(dim=1)
        real = mask.unsqueeze(2).to(votes.dtype)  # (B, T, 1)
        return (votes * real).sum(1) / real.sum(1)

    def word_distributions(self, scores: Tensor, mask: Tensor | None, T: int) -> Tensor:
        """What the tag layer reads of the intent (B, T, I): each word's own
        probabilities, or the utterance's at every word."""
        if self.per_token:
            return self.activate(scores)
        return self.activate(scores).unsqueeze(1).expand(-1, T, -1)

    def choose(self, probabilities: Tensor) -> tuple[Tensor, Tensor]:
        """The predicted intents and their probability (B,). Single-label: label ids
        (B,); multi-label: the chosen atoms (B, A) bool, whose probability is that of
        exactly this set under the independent sigmoids."""
        probabilities = probabilities.float()
        best = probabilities.argmax(1)  # (B,)
        if not self.multi:
            return best, probabilities.gather(1, best.unsqueeze(1)).squeeze(1)
        chosen = probabilities > self.threshold  # (B, A)
        chosen[torch.arange(len(best), device=best.device), best] = True  # never empty
        agree = torch.where(chosen, probabilities, 1 - probabilities)
        return chosen, agree.prod(1)

    def names(self, chosen: Tensor) -> list[str]:
        """The label of each chosen intent (see `choose`)."""
        if not self.multi:
            return [self.labels[i] for i in chosen.tolist()]
        return [self.sets.name(i for i, on in enumerate(row) if on) for row in chosen.tolist()]

    def soft_loss(self, scores: Tensor, targets: Tensor, mask: Tensor | None,
                  weight: Tensor, temperature: float = 1.0) -> Tensor:
        """Cross-entropy with target distributions (B, I) over labels (single) or atoms'
        probabilities (multi), the scores divided by `temperature`; per token, every real
        word's; the mean over utterances weighted by `weight` (B,)."""
        scores = scores.float() / temperature
        targets = targets.float()
        if self.per_token:
            targets = targets.unsqueeze(1).expand(-1, scores.size(1), -1)  # (B, T, I)
        if self.multi:
            each = F.binary_cross_entropy_with_logits(scores, targets,
                                                      reduction="none").sum(-1)
        else:
            each = -(targets * scores.log_softmax(-1)).sum(-1)  # (B,) or (B, T)
        if self.per_token:
            real = (mask if mask is not None else torch.ones_like(each, dtype=torch.bool))
            each = (each * real).sum(1) / real.sum(1)  # (B,)
        return (each * weight).sum() / weight.numel()

    def loss(self, scores: Tensor, intents: Tensor, mask: Tensor | None = None) -> Tensor:
        """Cross-entropy of the gold label (single), or the sum over atoms of the binary
        cross-entropies of the gold set (multi); per token, the mean over real words."""
        if self.per_token:
            gold = intents.unsqueeze(1).expand(-1, scores.size(1))  # (B, T)
            if mask is not None:
                scores, gold = scores[mask], gold[mask]  # (N, I), (N,)
            scores, intents = scores.reshape(-1, scores.size(-1)), gold.reshape(-1)
        if not self.multi:
            return F.cross_entropy(scores, intents, label_smoothing=self.label_smoothing)
        target = self.membership[intents]  # (N, A)
        if self.label_smoothing:
            target = target * (1 - self.label_smoothing) + self.label_smoothing / 2
        return F.binary_cross_entropy_with_logits(scores.float(), target,
                                                  reduction="none").sum(1).mean()
