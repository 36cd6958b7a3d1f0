"""Output heads over encoder states (B, T, H).

A tag head gives tag scores (`forward(states, mask)`, (B, T, K)), a training loss
(`loss(states, tags, mask)`) and the best tags (`decode(states, mask)`): the softmax head
here, the CRF head (crf.py) and the encoder-decoder's attention decoder (seq2seq.py).
`span_confidence(states, mask, tags, spans)` gives the probability of each decoded span.
The intent head is in intent.py.
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

    def soft_loss(self, scores: Tensor, targets: Tensor, mask: Tensor | None,
                  weight: Tensor, temperature: float = 1.0) -> Tensor:
        """Cross-entropy of the tag scores (B, T, K) divided by `temperature` with target
        distributions (B, T, K), 0 at padding; per utterance times `weight` (B,), divided
        by the real tokens."""
        each = -(targets.float() * (scores.float() / temperature).log_softmax(-1)).sum(2)
        tokens = scores.size(0) * scores.size(1) if mask is None else mask.sum()
        return (each.sum(1) * weight).sum() / tokens

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
