"""Recurrent encoders over embedded words: (B, T, I) -> (B, T, output_size).

Every encoder is a stack of layers, each with one recurrence per direction. The backward
direction reads each utterance reversed *within its own length*, so that padding always
sits at the end of what a recurrence reads and never leaks into real positions. This is
exact, like packing, but keeps plain dense tensors, so torch's fused recurrent kernels
(oneDNN on CPU, cuDNN on GPU) run on every batch, padded or not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import Tensor, nn

from slotfill.config import ModelConfig

_TORCH_RNNS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class TorchRecurrence(nn.Module):
    """One direction of one layer of torch's fused rnn/lstm/gru: (B, T, I) -> (B, T, H)."""

    def __init__(self, cfg: ModelConfig, input_size: int) -> None:
        super().__init__()
        extra = {"nonlinearity": cfg.nonlinearity} if cfg.type == "rnn" else {}
        self.rnn = _TORCH_RNNS[cfg.type](input_size, cfg.hidden_size, bias=cfg.bias,
                                         batch_first=True, **extra)

    def forward(self, x: Tensor) -> Tensor:
        return self.rnn(x)[0]


class StackedEncoder(nn.Module):
    """`num_layers` layers of one or two directions; dropout between layers, as in
    torch.nn.RNN. `make(layer, direction, input_size)` builds one recurrence."""

    def __init__(self, cfg: ModelConfig, input_size: int,
                 make: Callable[[int, int, int], nn.Module]) -> None:
        super().__init__()
        directions = 2 if cfg.bidirectional else 1
        self.layers = nn.ModuleList(
            nn.ModuleList(make(layer, d, input_size if layer == 0 else
                               cfg.hidden_size * directions) for d in range(directions))
            for layer in range(cfg.num_layers))
        self.dropout = nn.Dropout(cfg.dropout)
        self.output_size = cfg.hidden_size * directions

    def forward(self, x: Tensor, lengths: Tensor, mask: Tensor | None) -> Tensor:
        for i, directions in enumerate(self.layers):
            if i > 0:
                x = self.dropout(x)
            forward = directions[0](x)  # (B, T, H)
            if len(directions) == 1:
                x = forward
                continue
            backward = directions[1](reverse_padded(x, lengths, mask))
            x = torch.cat([forward, reverse_padded(backward, lengths, mask)], dim=-1)
        return x  # (B, T, D*H)


def reverse_padded(x: Tensor, lengths: Tensor, mask: Tensor | None) -> Tensor:
    """Reverse each utterance within its own length; padding stays at the end.
    x: (B, T, ...). Applying it twice gives x back."""
    if mask is None:
        return x.flip(1)
    T = x.size(1)
    steps = torch.arange(T, device=x.device)  # (T,)
    lens = lengths.to(x.device).unsqueeze(1)  # (B, 1)
    index = torch.where(steps < lens, lens - 1 - steps, steps)  # (B, T)
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


def build_encoder(cfg: ModelConfig, input_size: int, num_tags: int) -> StackedEncoder:
    """The configured encoder; seq2seq encodes with an LSTM. A one-directional Jordan
    network's top layer owns the tag layer it feeds back, as `tag_layer`, for the head."""
    if cfg.type != "jordan":
        kind = dataclasses.replace(cfg, type="lstm") if cfg.type == "seq2seq" else cfg
        return StackedEncoder(kind, input_size,
                              lambda layer, direction, size: TorchRecurrence(kind, size))
    from slotfill.models.jordan import JordanLayer

    def make(layer: int, direction: int, size: int) -> nn.Module:
        return JordanLayer(size, cfg.hidden_size, num_tags, cfg.nonlinearity, cfg.bias)
    encoder = StackedEncoder(cfg, input_size, make)
    if not cfg.bidirectional:
        encoder.tag_layer = encoder.layers[-1][0].output
    return encoder
