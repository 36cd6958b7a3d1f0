"""The tagger: word representations -> recurrent encoder -> tag head (+ intent head).

Every architecture is this one module with other parts: the encoder is an Elman, Jordan,
LSTM or GRU stack (LSTM for seq2seq), the tag head a softmax, a CRF or an attention
decoder. Heads are built from the encoder's `output_size`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from slotfill.config import ModelConfig
from slotfill.data.batching import Batch
from slotfill.data.bio import extract_spans
from slotfill.data.vocab import Vocabs
from slotfill.models.crf import CRFHead, allowed_transitions, chunk_relations
from slotfill.models.embedder import Embedder, SequenceDropout
from slotfill.models.encoders import build_encoder
from slotfill.models.heads import IntentHead, SoftmaxHead
from slotfill.models.seq2seq import AttentionDecoder

Decoded = tuple[Tensor, Tensor | None]  # tag ids (B, T); intent ids (B,) or None


@dataclass
class Confidence:
    """How sure a tagger is of what it decoded, in [0, 1]."""

    spans: list[dict[tuple[int, int], float]]  # per utterance: (start, end) of a span -> p
    intents: list[float] | None  # probability of each predicted intent


class Tagger(nn.Module):
    def __init__(self, cfg: ModelConfig, vocabs: Vocabs,
                 train_tags: Iterable[Sequence[str]] = ()) -> None:
        """`train_tags`: gold sequences whose transitions a CRF must allow even where BIO
        forbids them (ill-formed training data)."""
        super().__init__()
        num_tags = len(vocabs.tags)
        self.embedder = Embedder(cfg, len(vocabs.words),
                                 len(vocabs.chars) if vocabs.chars else None,
                                 pretrained_words=vocabs.pretrained_words)
        self.encoder = build_encoder(cfg, self.embedder.output_size, num_tags)
        self.output_dropout = SequenceDropout(cfg.output_dropout, cfg.locked_dropout)
        self.tag_names = list(vocabs.tags.itos)  # for the spans confidences are given to
        size, shared = self.encoder.output_size, getattr(self.encoder, "tag_layer", None)
        if cfg.type == "seq2seq":
            self.head = AttentionDecoder(size, cfg.hidden_size, num_tags, cfg.bias)
        elif cfg.head == "crf":
            self.head = CRFHead(size, *allowed_transitions(vocabs.tags.itos, train_tags),
                                linear=shared, chunks=chunk_relations(vocabs.tags.itos))
        else:
            self.head = SoftmaxHead(size, num_tags, linear=shared)
        self.intent_head = IntentHead(size, len(vocabs.intents)) if cfg.intent else None

    def states(self, batch: Batch) -> Tensor:
        x = self.embedder(batch)  # (B, T, D)
        return self.output_dropout(self.encoder(x, batch.lengths, batch.mask))  # (B, T, H')

    def scores(self, batch: Batch) -> Tensor:
        """Tag scores (B, T, K): a softmax or CRF head's emissions, the decoder's scores
        while it decodes greedily."""
        return self.head(self.states(batch), batch.mask)

    def forward(self, batch: Batch) -> Tensor:
        """The training loss (so that DistributedDataParallel can wrap the model)."""
        return self.loss(batch)

    def loss(self, batch: Batch) -> Tensor:
        states = self.states(batch)
        loss = self.head.loss(states, batch.tags, batch.mask)
        if self.intent_head is not None:
            loss = loss + self.intent_head.loss(self.intent_head(states, batch.mask),
                                                batch.intents)
        return loss

    def decode(self, batch: Batch) -> Decoded:
        """Best tag ids (B, T) (positions past a length are meaningless) and intents."""
        states = self.states(batch)
        tags = self.head.decode(states, batch.mask)
        intents = (self.intent_head(states, batch.mask).argmax(1)
                   if self.intent_head is not None else None)
        return tags, intents

    def decode_with_confidence(self, batch: Batch) -> tuple[Tensor, Tensor | None, Confidence]:
        """What `decode` gives, plus the confidence of every span in the decoded tags
        (data/bio.extract_spans) and of every predicted intent."""
        states = self.states(batch)
        tags = self.head.decode(states, batch.mask)  # (B, T)
        lengths = batch.lengths.tolist()
        found = [[(start, end) for _, start, end in
                  extract_spans([self.tag_names[i] for i in row[:n]])]
                 for row, n in zip(tags.tolist(), lengths)]
        spans = torch.tensor([(b, start, end) for b, row in enumerate(found)
                              for start, end in row], dtype=torch.long,
                             device=tags.device).view(-1, 3)  # (N, 3)
        values = (self.head.span_confidence(states, batch.mask, tags, spans).tolist()
                  if len(spans) else [])
        confidence, i = [], 0
        for row in found:
            confidence.append(dict(zip(row, values[i:i + len(row)])))
            i += len(row)
        intents = intent_p = None
        if self.intent_head is not None:
            scores = self.intent_head(states, batch.mask).float()  # (B, I)
            intents = scores.argmax(1)  # as `decode` picks them
            intent_p = scores.softmax(1).gather(1, intents.unsqueeze(1)).squeeze(1).tolist()
        return tags, intents, Confidence(confidence, intent_p)


def build_model(cfg: ModelConfig, vocabs: Vocabs,
                train_tags: Iterable[Sequence[str]] = ()) -> Tagger:
    return Tagger(cfg, vocabs, train_tags)
