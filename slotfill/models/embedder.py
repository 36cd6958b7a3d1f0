"""Word representations: embeddings, optional character features, optional gazetteer
features (data/gazetteer.py), optional word window.

(B, T) word ids -> (B, T, output_size). Padding positions come out as zeros, so that a
padded batch scores exactly like the same utterances unpadded (also through windows).
With pretrained vectors (model.embeddings), the words that only the vectors file knows
have their own table after the trained one, never updated (so the optimiser keeps no
state for it), and `load_vectors` starts the trained rows from the file's vectors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slotfill.config import ModelConfig
from slotfill.data.batching import Batch


class SequenceDropout(nn.Module):
    """Dropout on (B, T, D); `locked` draws one mask per utterance and feature and reuses
    it at every step (variational dropout, Gal & Ghahramani 2016): a better regulariser
    for recurrent networks, and T times fewer random numbers."""

    def __init__(self, p: float, locked: bool) -> None:
        super().__init__()
        self.p, self.locked = p, locked

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if not self.locked:
            return F.dropout(x, self.p, training=True)
        keep = torch.empty(x.size(0), 1, x.size(2), device=x.device, dtype=x.dtype)
        return x * keep.bernoulli_(1 - self.p).div_(1 - self.p)


class CharEncoder(nn.Module):
    """A word's characters -> one vector: a CNN with max-pooling (Ma & Hovy 2016) or a
    BiLSTM's final states (Lample et al. 2016). Computed once per distinct spelling."""

    def __init__(self, kind: str, num_chars: int, char_dim: int, size: int) -> None:
        super().__init__()
        self.kind = kind
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=0)
        if kind == "cnn":
            self.conv = nn.Conv1d(char_dim, size, kernel_size=3, padding=1)
        else:
            self.lstm = nn.LSTM(char_dim, size // 2, batch_first=True, bidirectional=True)
        self.output_size = size

    def forward(self, chars: Tensor) -> Tensor:
        """chars (S, C) char ids, 0 = padding -> (S, size)."""
        x = self.embedding(chars)  # (S, C, Dc)
        real = chars != 0  # (S, C)
        if self.kind == "cnn":
            h = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (S, C, size)
            h = h.masked_fill(~real.unsqueeze(2), float("-inf")).amax(dim=1)
            return torch.where(real.any(1, keepdim=True), h, torch.zeros_like(h))
        lengths = real.sum(1).clamp_min(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                   enforce_sorted=False)
        _, (h, _) = self.lstm(packed)  # h: (2, S, size/2)
        return torch.cat([h[0], h[1]], dim=1)


class Embedder(nn.Module):
    def __init__(self, cfg: ModelConfig, num_words: int, num_chars: int | None,
                 pretrained_words: int = 0, num_features: int = 0) -> None:
        super().__init__()
        self.words = nn.Embedding(num_words - pretrained_words, cfg.embedding_dim,
                                  padding_idx=0)
        self.words.weight.requires_grad_(not cfg.freeze_embeddings)
        self.pretrained = None  # (P, E) vectors of words only the vectors file has
        if pretrained_words:
            self.pretrained = nn.Parameter(torch.zeros(pretrained_words, cfg.embedding_dim),
                                           requires_grad=False)
        self.chars = (CharEncoder(cfg.char, num_chars, cfg.char_dim, cfg.char_size)
                      if cfg.char != "none" else None)
        self.dropout = SequenceDropout(cfg.embedding_dropout, cfg.locked_dropout)
        self.window = cfg.context_window
        self.num_features = num_features  # gazetteer features, read as they are
        width = cfg.embedding_dim + (cfg.char_size if self.chars else 0) + num_features
        self.output_size = width * (2 * self.window + 1)

    def lookup(self, ids: Tensor) -> Tensor:
        """(B, T) word ids -> (B, T, E) embeddings; zeros at padding."""
        if self.pretrained is None:
            return self.words(ids)
        trained = self.words.num_embeddings
        own = self.words(ids.clamp(max=trained - 1))
        other = F.embedding((ids - trained).clamp(min=0), self.pretrained)
        return torch.where((ids < trained).unsqueeze(2), own, other)

    def word_table(self) -> Tensor:
        """(V, E): the embedding of every word id (for export)."""
        if self.pretrained is None:
            return self.words.weight
        return torch.cat([self.words.weight, self.pretrained])

    @torch.no_grad()
    def load_vectors(self, vectors: dict[int, Tensor]) -> None:
        """Start from pretrained vectors (word id -> (E,)); the other trained rows are
        drawn again at the vectors' scale, so found and unfound words start alike."""
        trained = self.words.num_embeddings
        own = {i: v for i, v in vectors.items() if i < trained}
        if own:
            scale = torch.stack(list(own.values())).std()
            self.words.weight.normal_(0.0, float(scale))
            self.words.weight[0].zero_()  # padding
            ids = torch.tensor(list(own))
            self.words.weight[ids] = torch.stack(list(own.values()))
        for i, vector in vectors.items():
            if i >= trained:
                self.pretrained[i - trained] = vector

    def forward(self, batch: Batch) -> Tensor:
        x = self.lookup(batch.words)  # (B, T, E); zeros at padding
        if self.chars is not None:
            unique, inverse = torch.unique(batch.spellings, return_inverse=True)
            spelled = self.chars(batch.chars[unique])[inverse]  # (B, T, C)
            if batch.mask is not None:
                spelled = spelled * batch.mask.unsqueeze(2)
            x = torch.cat([x, spelled], dim=2)
        x = self.dropout(x)
        if self.num_features:
            x = torch.cat([x, batch.features.to(x.dtype)], dim=2)  # (B, T, D + F)
        if self.window:
            k = self.window  # (B, T, D) -> (B, T, (2k+1) D): words t-k .. t+k
            padded = F.pad(x, (0, 0, k, k))  # (B, T + 2k, D)
            x = padded.unfold(1, 2 * k + 1, 1).transpose(2, 3).flatten(2)
        return x
