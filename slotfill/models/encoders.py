"""Recurrent encoders over embedded words: (B, T, I) -> (B, T, output_size).

`rnn` (Elman), `lstm` and `gru` wrap torch's fused modules; `jordan` lives in jordan.py.
Batches without padding (mask None) run the fused kernels directly; padded batches are
packed so that padding never leaks into the backward direction.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from slotfill.config import ModelConfig

_TORCH_RNNS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class TorchRNNEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig, input_size: int) -> None:
        super().__init__()
        extra = {"nonlinearity": cfg.nonlinearity} if cfg.type == "rnn" else {}
        self.rnn = _TORCH_RNNS[cfg.type](
            input_size, cfg.hidden_size, num_layers=cfg.num_layers, bias=cfg.bias,
            batch_first=True, dropout=cfg.dropout, bidirectional=cfg.bidirectional, **extra)
        self.output_size = cfg.hidden_size * (2 if cfg.bidirectional else 1)

    def forward(self, x: Tensor, lengths: Tensor, mask: Tensor | None) -> Tensor:
        if mask is None:
            return self.rnn(x)[0]  # (B, T, D*H)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0]


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
