"""The tagger: word representations -> recurrent encoder -> tag head (+ intent head).

Every architecture is this one module with other parts: the words are embedded or read
by a pretrained transformer (transformer.py); the encoder is an Elman, Jordan, LSTM or
GRU stack (LSTM for seq2seq) or none, optionally followed by self-attention whose output
joins the states; the tag head a softmax, a CRF or an attention decoder, which may also
read the intent head's distribution (Stack-Propagation), or the intent head may read the
tag scores (slot-gated, intent.SlotReader). With model.refine the whole tagger runs twice,
the second pass reading where the first pass's chunks begin (refine.py). Heads are built
from the size of what they read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from slotfill.config import ModelConfig
from slotfill.data.batching import Batch
from slotfill.data.bio import extract_spans
from slotfill.data.vocab import Vocabs
from slotfill.models.attention import SelfAttention
from slotfill.models.crf import CRFHead, allowed_transitions, chunk_relations
from slotfill.models.embedder import Embedder, SequenceDropout
from slotfill.models.encoders import build_encoder
from slotfill.models.heads import SoftmaxHead
from slotfill.models.intent import SLOT_READING_SIZE, IntentHead, SlotReader
from slotfill.models.refine import ChunkStarts
from slotfill.models.seq2seq import AttentionDecoder

# tag ids (B, T); the chosen intents (IntentHead.choose: ids (B,), or atoms (B, A)) or None
Decoded = tuple[Tensor, Tensor | None]


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
        features = vocabs.gazetteers.size if vocabs.gazetteers else 0
        if cfg.transformer is not None:
            from slotfill.models.transformer import TransformerEmbedder
            self.embedder = TransformerEmbedder(vocabs.subwords, features)
        else:
            self.embedder = Embedder(cfg, len(vocabs.words),
                                     len(vocabs.chars) if vocabs.chars else None,
                                     pretrained_words=vocabs.pretrained_words,
                                     num_features=features)
        self.refine = ChunkStarts(vocabs.tags.itos) if cfg.refine else None
        self.encoder = build_encoder(cfg, self.embedder.output_size + (
            self.refine.output_size if self.refine is not None else 0), num_tags)
        self.output_dropout = SequenceDropout(cfg.output_dropout, cfg.locked_dropout)
        self.tag_names = list(vocabs.tags.itos)  # for the spans confidences are given to
        size, shared = self.encoder.output_size, getattr(self.encoder, "tag_layer", None)
        self.attention = SelfAttention(size, cfg.attention_heads) if cfg.attention_heads \
            else None
        size *= 2 if self.attention is not None else 1
        self.slot_reader = SlotReader(num_tags) if cfg.intent_reads_slots else None
        self.intent_head = IntentHead(
            size + (SLOT_READING_SIZE if self.slot_reader is not None else 0),
            vocabs.intents.itos, cfg.intent_level == "token", cfg.multi_intent,
            cfg.intent_threshold, attend=cfg.intent_reads_slots) if cfg.intent else None
        self.intent_to_slots = cfg.intent_to_slots
        if self.intent_to_slots:
            size += self.intent_head.linear.out_features
        if cfg.type == "seq2seq":
            self.head = AttentionDecoder(size, cfg.hidden_size, num_tags, cfg.bias)
        elif cfg.head == "crf":
            self.head = CRFHead(size, *allowed_transitions(vocabs.tags.itos, train_tags),
                                linear=shared, chunks=chunk_relations(vocabs.tags.itos))
        else:
            self.head = SoftmaxHead(size, num_tags, linear=shared)

    def states(self, batch: Batch, hints: Tensor | None = None) -> Tensor:
        """Encoder states, with the self-attention summaries beside them: (B, T, H').
        With model.refine, the encoder also reads the previous pass's chunk starts
        (`hints`, refine.ChunkStarts.hints; None in the first pass)."""
        x = self.embedder(batch)  # (B, T, D)
        if self.refine is not None:
            x = torch.cat([x, self.refine(hints, batch.words, batch.mask)], dim=2)
        states = self.encoder(x, batch.lengths, batch.mask)  # (B, T, H)
        if self.attention is not None:
            states = torch.cat([states, self.attention(states, batch.mask)], dim=2)
        return self.output_dropout(states)

    def read(self, batch: Batch) -> tuple[Tensor, Tensor | None]:
        """What the tag head reads (B, T, S), and the intent scores (None without); of
        the second pass with model.refine."""
        first = self.read_pass(batch)
        return first if self.refine is None else self.read_pass(batch, self.hints(first, batch))

    def hints(self, first: tuple[Tensor, Tensor | None], batch: Batch) -> Tensor:
        """What the second pass reads of the first (`read_pass` output): its chunk starts."""
        with torch.no_grad():
            return self.refine.hints(self.head.decode(first[0], batch.mask), batch.mask)

    def read_pass(self, batch: Batch, hints: Tensor | None = None
                  ) -> tuple[Tensor, Tensor | None]:
        """One pass: what the tag head reads and the intent scores (see `read`)."""
        states = self.states(batch, hints)
        if self.intent_head is None:
            return states, None
        if self.slot_reader is not None:  # the intent reads the words' tag distributions
            read = self.slot_reader(self.head(states, batch.mask))  # (B, T, SLOT_READING_SIZE)
            return states, self.intent_head(torch.cat([states, read], dim=2), batch.mask)
        intent = self.intent_head(states, batch.mask)
        if self.intent_to_slots:
            seen = self.intent_head.word_distributions(intent, batch.mask, states.size(1))
            states = torch.cat([states, seen], dim=2)  # (B, T, H' + I)
        return states, intent

    def scores(self, batch: Batch) -> Tensor:
        """Tag scores (B, T, K): a softmax or CRF head's emissions, the decoder's scores
        while it decodes greedily."""
        return self.head(self.read(batch)[0], batch.mask)

    def outputs(self, batch: Batch) -> tuple[Tensor, Tensor | None]:
        """Tag scores (B, T, K) and the intent distribution (B, I) or None: what an
        ensemble averages."""
        states, intent = self.read(batch)
        probabilities = (self.intent_head.probabilities(intent, batch.mask)
                         if intent is not None else None)
        return self.head(states, batch.mask), probabilities

    def forward(self, batch: Batch) -> Tensor:
        """The training loss (so that DistributedDataParallel can wrap the model)."""
        return self.loss(batch)

    def loss(self, batch: Batch) -> Tensor:
        """The tag and intent losses; with model.refine, of both passes."""
        return self.loss_and_read(batch)[0]

    def loss_and_read(self, batch: Batch) -> tuple[Tensor, tuple[Tensor, Tensor | None]]:
        """`loss`, and what the last pass read (`read`) for other losses to use."""
        read = self.read_pass(batch)
        loss = self.pass_loss(read, batch)
        if self.refine is not None:
            read = self.read_pass(batch, self.hints(read, batch))
            loss = loss + self.pass_loss(read, batch)
        return loss, read

    def pass_loss(self, read: tuple[Tensor, Tensor | None], batch: Batch) -> Tensor:
        states, intent = read
        loss = self.head.loss(states, batch.tags, batch.mask)
        if intent is not None:
            loss = loss + self.intent_head.loss(intent, batch.intents, batch.mask)
        return loss

    def decode(self, batch: Batch) -> Decoded:
        """Best tag ids (B, T) (positions past a length are meaningless) and intents."""
        states, intent = self.read(batch)
        tags = self.head.decode(states, batch.mask)
        intents = (self.intent_head.choose(self.intent_head.probabilities(intent, batch.mask))[0]
                   if intent is not None else None)
        return tags, intents

    def intent_names(self, intents: Tensor) -> list[str]:
        """The labels of decoded intents (`decode`'s second output)."""
        return self.intent_head.names(intents)

    def decode_with_confidence(self, batch: Batch) -> tuple[Tensor, Tensor | None, Confidence]:
        """What `decode` gives, plus the confidence of every span in the decoded tags
        (data/bio.extract_spans) and of every predicted intent."""
        states, intent = self.read(batch)
        tags = self.head.decode(states, batch.mask)  # (B, T)
        chosen = (self.intent_head.choose(self.intent_head.probabilities(intent, batch.mask))
                  if intent is not None else None)
        return with_confidence(
            tags, chosen, batch, self.tag_names,
            lambda spans: self.head.span_confidence(states, batch.mask, tags, spans))

    def set_label_smoothing(self, amount: float) -> None:
        """Smooth the cross-entropy losses (train.label_smoothing; a CRF has none)."""
        for part in (self.head, self.intent_head):
            if hasattr(part, "label_smoothing"):
                part.label_smoothing = amount


def with_confidence(tags: Tensor, intents: tuple[Tensor, Tensor] | None, batch: Batch,
                    tag_names: Sequence[str],
                    span_confidence: Callable[[Tensor], Tensor]
                    ) -> tuple[Tensor, Tensor | None, Confidence]:
    """Decoded tags (B, T) and the chosen intents with their probabilities
    (IntentHead.choose) or None, with the confidence of each span of the tags,
    `span_confidence(spans (N, 3): row, start, end)` -> (N,)."""
    found = [[(start, end) for _, start, end in extract_spans([tag_names[i] for i in row[:n]])]
             for row, n in zip(tags.tolist(), batch.lengths.tolist())]
    spans = torch.tensor([(b, start, end) for b, row in enumerate(found)
                          for start, end in row], dtype=torch.long,
                         device=tags.device).view(-1, 3)  # (N, 3)
    values = span_confidence(spans).tolist() if len(spans) else []
    confidence, i = [], 0
    for row in found:
        confidence.append(dict(zip(row, values[i:i + len(row)])))
        i += len(row)
    chosen, intent_p = intents if intents is not None else (None, None)
    return tags, chosen, Confidence(confidence,
                                    intent_p.tolist() if intent_p is not None else None)


def build_model(cfg: ModelConfig, vocabs: Vocabs,
                train_tags: Iterable[Sequence[str]] = ()) -> Tagger:
    return Tagger(cfg, vocabs, train_tags)
