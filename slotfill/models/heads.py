"""Output heads over encoder states (B, T, H).

A tag head gives tag scores (`forward(states, mask)`, (B, T, K)), a training loss
(`loss(states, tags, mask)`) and the best tags (`decode(states, mask)`): the softmax head
here, the CRF head (crf.py) and the encoder-decoder's attention decoder (seq2seq.py).
The intent head scores the utterance's intent from the same states.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class SoftmaxHead(nn.Module):
    """Independent softmax over tags at every position. `linear` shares an existing tag
    layer (a Jordan network feeds its output back), else one is made."""

    def __init__(self, input_size: int, num_tags: int, linear: nn.Linear | None = None) -> None:
        super().__init__()
        self.linear = linear if linear is not None else nn.Linear(input_size, num_tags)

    def forward(self, states: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.linear(states)  # (B, T, K) emission scores

    def loss(self, states: Tensor, tags: Tensor, mask: Tensor | None) -> Tensor:
        """Mean cross-entropy over real tokens. states (B, T, H), tags (B, T)."""
        scores = self(states)
        if mask is not None:
            scores, tags = scores[mask], tags[mask]  # (N, K), (N,)
        return F.cross_entropy(scores.reshape(-1, scores.size(-1)), tags.reshape(-1))

    def decode(self, states: Tensor, mask: Tensor | None) -> Tensor:
        return self(states).argmax(dim=-1)  # (B, T); callers ignore padding positions


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
