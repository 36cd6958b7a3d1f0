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


# torch's fused kernels, as nn.RNN/LSTM/GRU call them, by kind of recurrence
_KERNELS = {"lstm": torch._VF.lstm, "gru": torch._VF.gru,
            "rnn_tanh": torch._VF.rnn_tanh, "rnn_relu": torch._VF.rnn_relu}


def both_directions(forward: nn.Module, backward: nn.Module, x: Tensor) -> Tensor | None:
    """Both directions of a layer in one call of torch's fused kernel, the backward one
    reading `x` reversed: (B, T, I) -> (B, T, 2H), as nn.LSTM(bidirectional=True) would
    compute it from these two modules' weights. Only for batches without padding (which
    bucket batching trains on): one call costs 5-10% less than two and the reversals
    around the second. None where the modules are not two of torch's recurrences."""
    if not (isinstance(forward, TorchRecurrence) and isinstance(backward, TorchRecurrence)):
        return None
    f, b = forward.rnn, backward.rnn
    if not (isinstance(f, nn.RNNBase) and isinstance(b, nn.RNNBase)):
        return None  # int8 recurrences (models/quantization.py) have no flat weights
    kind = f.mode.lower()  # lstm, gru, rnn_tanh, rnn_relu
    kernel = _KERNELS.get(kind)
    if kernel is None or getattr(f, "proj_size", 0):
        return None
    h0 = x.new_zeros(2, x.size(0), f.hidden_size)  # (directions, B, H)
    state = (h0, h0) if kind == "lstm" else h0
    return kernel(x, state, [*f._flat_weights, *b._flat_weights], f.bias, 1, 0.0,
                  f.training, True, True)[0]


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
            if len(directions) == 2 and mask is None:
                both = both_directions(*directions, x)  # (B, T, 2H)
                if both is not None:
                    x = both
                    continue
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


class PassThrough(nn.Module):
    """model.type `none`: the word representations as they are (a transformer's states
    are contextual already)."""

    def __init__(self, input_size: int) -> None:
        super().__init__()
        self.output_size = input_size

    def forward(self, x: Tensor, lengths: Tensor, mask: Tensor | None) -> Tensor:
        return x


def build_encoder(cfg: ModelConfig, input_size: int, num_tags: int) -> nn.Module:
    """The configured encoder; seq2seq encodes with an LSTM. A one-directional Jordan
    network's top layer owns the tag layer it feeds back, as `tag_layer`, for the head."""
    if cfg.type == "none":
        return PassThrough(input_size)
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
