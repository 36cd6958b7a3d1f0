"""Self-attention over the encoder states (Vaswani et al. 2017), as Stack-Propagation
(Qin et al. 2019) adds to its BiLSTM: every word reads a weighted summary of all words,
whatever their distance. The tagger concatenates the summary to the states.

    head_h(X) = softmax(Q_h K_h^T / sqrt(d) + padding) V_h,    out = [head_1 .. head_n] W_o
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class SelfAttention(nn.Module):
    """(B, T, D) states -> (B, T, D) attention summaries; padded positions are never read."""

    def __init__(self, size: int, heads: int) -> None:
        super().__init__()
        if size % heads:
            raise ValueError(f"the state size {size} must be divisible by heads, got {heads}")
        self.heads = heads
        self.query = nn.Linear(size, size)
        self.key = nn.Linear(size, size)
        self.value = nn.Linear(size, size)
        self.out = nn.Linear(size, size)
        self.output_size = size

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        B, T, D = x.shape
        d = D // self.heads

        def split(t: Tensor) -> Tensor:  # (B, T, D) -> (B, heads, T, d)
            return t.view(B, T, self.heads, d).transpose(1, 2)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(2, 3) / math.sqrt(d)  # (B, heads, T, T)
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        summary = torch.softmax(scores, dim=-1) @ v  # (B, heads, T, d)
        return self.out(summary.transpose(1, 2).reshape(B, T, D))
