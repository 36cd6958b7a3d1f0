"""The tagger: word embeddings -> recurrent encoder -> tag head."""

from __future__ import annotations

from torch import Tensor, nn

from slotfill.batching import Batch
from slotfill.config import ModelConfig
from slotfill.models.encoders import TorchRNNEncoder
from slotfill.models.heads import SoftmaxHead
from slotfill.models.jordan import JordanEncoder


class Tagger(nn.Module):
    def __init__(self, cfg: ModelConfig, num_words: int, num_tags: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_words, cfg.embedding_dim, padding_idx=0)
        self.embedding_dropout = nn.Dropout(cfg.embedding_dropout)
        encoder_size = cfg.hidden_size * (2 if cfg.bidirectional else 1)
        self.head = SoftmaxHead(encoder_size, num_tags)
        if cfg.type == "jordan":
            self.encoder = JordanEncoder(cfg, cfg.embedding_dim, num_tags,
                                         tag_layer=self.head.linear)
        else:
            self.encoder = TorchRNNEncoder(cfg, cfg.embedding_dim)
        self.output_dropout = nn.Dropout(cfg.output_dropout)

    def scores(self, batch: Batch) -> Tensor:
        x = self.embedding_dropout(self.embedding(batch.words))  # (B, T, E)
        states = self.encoder(x, batch.lengths, batch.mask)  # (B, T, D*H)
        return self.head(self.output_dropout(states))  # (B, T, K)

    def loss(self, batch: Batch) -> Tensor:
        return self.head.loss(self.scores(batch), batch.tags, batch.mask)

    def decode(self, batch: Batch) -> Tensor:
        """Best tag ids, (B, T); positions past an utterance's length are meaningless."""
        return self.head.decode(self.scores(batch), batch.mask)


def build_model(cfg: ModelConfig, num_words: int, num_tags: int) -> Tagger:
    return Tagger(cfg, num_words, num_tags)
