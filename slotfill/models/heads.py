"""Output heads over encoder states (B, T, H).

A tag head gives tag scores (`forward(states, mask)`, (B, T, K)), a training loss
(`loss(states, tags, mask)`) and the best tags (`decode(states, mask)`): the softmax head
here, the CRF head (crf.py) and the encoder-decoder's attention decoder (seq2seq.py).
`span_confidence(states, mask, tags, spans)` gives the probability of each decoded span.
The intent head scores the utterance's intent from the same states.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SoftmaxHead(nn.Module):
    """Independent softmax over tags at every position. `linear` shares an existing tag
    layer (a Jordan network feeds its output back), else one is made."""

    def __init__(self, input_size: int, num_tags: int, linear: nn.Linear | None = None) -> None:
        super().__init__()
        self.linear = linear if linear is not None else nn.Linear(input_size, num_tags)
        self.label_smoothing = 0.0  # a training option (train.label_smoothing)

    def forward(self, states: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.linear(states)  # (B, T, K) emission scores

    def loss(self, states: Tensor, tags: Tensor, mask: Tensor | None) -> Tensor:
        """Mean cross-entropy over real tokens. states (B, T, H), tags (B, T)."""
        scores = self(states)
        if mask is not None:
            scores, tags = scores[mask], tags[mask]  # (N, K), (N,)
        return F.cross_entropy(scores.reshape(-1, scores.size(-1)), tags.reshape(-1),
                               label_smoothing=self.label_smoothing)

    def decode(self, states: Tensor, mask: Tensor | None) -> Tensor:
        return self(states).argmax(dim=-1)  # (B, T); callers ignore padding positions

    def span_confidence(self, states: Tensor, mask: Tensor | None, tags: Tensor,
                        spans: Tensor) -> Tensor:
        """Each span's confidence, (N,): the product of its tokens' tag probabilities.
        tags (B, T) as decoded; spans (N, 3) long: row, start, end (exclusive)."""
        log_probs = self(states).float().log_softmax(-1)  # (B, T, K)
        return span_products(log_probs.gather(2, tags.unsqueeze(2)).squeeze(2), spans)


def span_products(log_probs: Tensor, spans: Tensor) -> Tensor:
    """exp of the sum of per-token log-probabilities (B, T) over each span (N, 3: row,
    start, end exclusive), (N,)."""
    steps = torch.arange(log_probs.size(1), device=log_probs.device)  # (T,)
    inside = (steps >= spans[:, 1:2]) & (steps < spans[:, 2:3])  # (N, T)
    return (log_probs[spans[:, 0]] * inside).sum(1).exp()


class IntentHead(nn.Module):
    """The utterance's intent from the encoder states: from their maximum over the real
    time steps (`per_token` False), or from every word, each predicting the intent, whose
    distributions are averaged: a soft vote (Stack-Propagation, Qin et al. 2019)."""

    def __init__(self, input_size: int, num_intents: int, per_token: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(input_size, num_intents)
        self.per_token = per_token
        self.label_smoothing = 0.0  # a training option (train.label_smoothing)

    def forward(self, states: Tensor, mask: Tensor | None) -> Tensor:
        """Intent scores: (B, I) for the utterance, or (B, T, I) per word."""
        if self.per_token:
            return self.linear(states)  # (B, T, I)
        if mask is not None:
            states = states.masked_fill(~mask.unsqueeze(2), float("-inf"))
        return self.linear(states.amax(dim=1))  # (B, I)

    def probabilities(self, scores: Tensor, mask: Tensor | None) -> Tensor:
        """The utterance's intent distribution (B, I): the words' mean vote per token."""
        if not self.per_token:
            return scores.softmax(dim=-1)
        votes = scores.softmax(dim=-1)  # (B, T, I)
        if mask is None:
            return votes.mean(dim=1)
        real = mask.unsqueeze(2).to(votes.dtype)  # (B, T, 1)
        return (votes * real).sum(1) / real.sum(1)

    def word_distributions(self, scores: Tensor, mask: Tensor | None, T: int) -> Tensor:
        """What the tag layer reads of the intent (B, T, I): each word's own distribution,
        or the utterance's at every word."""
        if self.per_token:
            return scores.softmax(dim=-1)
        return scores.softmax(dim=-1).unsqueeze(1).expand(-1, T, -1)

    def loss(self, scores: Tensor, intents: Tensor, mask: Tensor | None = None) -> Tensor:
        """Cross-entropy of the utterance's intent; per token, its mean over real words."""
        if not self.per_token:
            return F.cross_entropy(scores, intents, label_smoothing=self.label_smoothing)
        gold = intents.unsqueeze(1).expand(-1, scores.size(1))  # (B, T)
        if mask is not None:
            scores, gold = scores[mask], gold[mask]  # (N, I), (N,)
        return F.cross_entropy(scores.reshape(-1, scores.size(-1)), gold.reshape(-1),
                               label_smoothing=self.label_smoothing)
