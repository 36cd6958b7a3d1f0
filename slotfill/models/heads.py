"""Tag heads: encoder states -> tag scores, training loss, and decoding."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class SoftmaxHead(nn.Module):
    """Independent softmax over tags at every position."""

    def __init__(self, input_size: int, num_tags: int) -> None:
        super().__init__()
        self.linear = nn.Linear(input_size, num_tags)

    def forward(self, states: Tensor) -> Tensor:
        return self.linear(states)  # (B, T, K) emission scores

    def loss(self, scores: Tensor, tags: Tensor, mask: Tensor | None) -> Tensor:
        """Mean cross-entropy over real tokens. scores (B, T, K), tags (B, T)."""
        if mask is not None:
            scores, tags = scores[mask], tags[mask]  # (N, K), (N,)
        return F.cross_entropy(scores.reshape(-1, scores.size(-1)), tags.reshape(-1))

    def decode(self, scores: Tensor, mask: Tensor | None) -> Tensor:
        return scores.argmax(dim=-1)  # (B, T); padding positions are ignored by callers


class IntentHead(nn.Module):
    """Utterance intent from the encoder states, max-pooled over the real time steps."""

    def __init__(self, input_size: int, num_intents: int) -> None:
        super().__init__()
        self.linear = nn.Linear(input_size, num_intents)

    def forward(self, states: Tensor, mask: Tensor | None) -> Tensor:
        if mask is not None:
            states = states.masked_fill(~mask.unsqueeze(2), float("-inf"))
        return self.linear(states.amax(dim=1))  # (B, I)

    def loss(self, scores: Tensor, intents: Tensor) -> Tensor:
        return F.cross_entropy(scores, intents)
