"""Encoder-decoder tagger with aligned inputs and attention (after Liu & Lane 2016).

An LSTM encoder (bidirectional when configured) reads the words. A one-directional LSTM
decoder then emits one tag per word; at step t it reads the aligned encoder state h_t,
the embedding of the previous tag (the gold one while training, its own prediction when
decoding) and an attention summary of all encoder states:

    s_t = LSTMCell([h_t; E y_{t-1}; a_t], s_{t-1}),   a_t = sum_j softmax_j(h_j . W s_{t-1}) h_j
    p(y_t) = softmax(V [s_t; a_t; h_t])

Decoding is greedy, step by step, since each tag depends on the previous one.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slotfill.config import ModelConfig
from slotfill.data.batching import Batch
from slotfill.data.vocab import Vocabs
from slotfill.models.embedder import Embedder, SequenceDropout
from slotfill.models.encoders import StackedEncoder, TorchRecurrence
from slotfill.models.heads import IntentHead

TAG_EMBEDDING = 32  # size of the previous-tag embedding fed to the decoder


class Seq2SeqTagger(nn.Module):
    def __init__(self, cfg: ModelConfig, vocabs: Vocabs) -> None:
        super().__init__()
        num_tags = len(vocabs.tags)
        self.embedder = Embedder(cfg, len(vocabs.words),
                                 len(vocabs.chars) if vocabs.chars else None)
        lstm = dataclasses.replace(cfg, type="lstm")
        self.encoder = StackedEncoder(lstm, self.embedder.output_size,
                                      lambda layer, direction, size: TorchRecurrence(lstm, size))
        size, hidden = self.encoder.output_size, cfg.hidden_size
        self.output_dropout = SequenceDropout(cfg.output_dropout, cfg.locked_dropout)
        self.tag_embedding = nn.Embedding(num_tags + 1, TAG_EMBEDDING)  # last id: <start>
        self.start_tag = num_tags
        self.init = nn.Linear(size, 2 * hidden)  # s_0, cell_0 from the mean encoder state
        self.cell = nn.LSTMCell(2 * size + TAG_EMBEDDING, hidden, bias=cfg.bias)
        self.attention = nn.Linear(hidden, size, bias=False)  # W
        self.out = nn.Linear(hidden + 2 * size, num_tags)  # V
        self.intent_head = IntentHead(size, len(vocabs.intents)) if cfg.intent else None

    def _encode(self, batch: Batch) -> Tensor:
        x = self.embedder(batch)  # (B, T, D)
        return self.output_dropout(self.encoder(x, batch.lengths, batch.mask))  # (B, T, S)

    def _decode_steps(self, states: Tensor, mask: Tensor | None,
                      gold: Tensor | None) -> tuple[Tensor, Tensor]:
        """Tag scores (B, T, K) and chosen tags (B, T); teacher-forced when `gold`."""
        B, T, _ = states.shape
        real = mask if mask is not None else torch.ones(B, T, dtype=torch.bool,
                                                         device=states.device)
        mean = (states * real.unsqueeze(2)).sum(1) / real.sum(1, keepdim=True)  # (B, S)
        s, c = torch.tanh(self.init(mean)).chunk(2, dim=1)  # (B, H) each
        previous = torch.full((B,), self.start_tag, dtype=torch.long, device=states.device)
        scores, chosen = [], []
        for t in range(T):
            weights = torch.bmm(states, self.attention(s).unsqueeze(2)).squeeze(2)  # (B, T)
            weights = weights.masked_fill(~real, float("-inf")).softmax(dim=1)
            context = torch.bmm(weights.unsqueeze(1), states).squeeze(1)  # (B, S)
            step_in = torch.cat([states[:, t], self.tag_embedding(previous), context], dim=1)
            s, c = self.cell(step_in, (s, c))  # (B, H)
            score = self.out(torch.cat([s, context, states[:, t]], dim=1))  # (B, K)
            best = score.argmax(dim=1)
            scores.append(score)
            chosen.append(best)
            previous = gold[:, t] if gold is not None else best
        return torch.stack(scores, dim=1), torch.stack(chosen, dim=1)

    def forward(self, batch: Batch) -> Tensor:
        """The training loss (so that DistributedDataParallel can wrap the model)."""
        return self.loss(batch)

    def loss(self, batch: Batch) -> Tensor:
        states = self._encode(batch)
        scores, _ = self._decode_steps(states, batch.mask, batch.tags)
        if batch.mask is not None:
            loss = F.cross_entropy(scores[batch.mask], batch.tags[batch.mask])
        else:
            loss = F.cross_entropy(scores.flatten(0, 1), batch.tags.flatten())
        if self.intent_head is not None:
            loss = loss + self.intent_head.loss(self.intent_head(states, batch.mask),
                                                batch.intents)
        return loss

    def decode(self, batch: Batch) -> tuple[Tensor, Tensor | None]:
        states = self._encode(batch)
        _, tags = self._decode_steps(states, batch.mask, None)
        intents = (self.intent_head(states, batch.mask).argmax(1)
                   if self.intent_head is not None else None)
        return tags, intents
