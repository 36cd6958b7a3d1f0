"""Predictions and scores for a model on a list of examples or a corpus split."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from slotfill.analysis.metrics import Counts
from slotfill.data.batching import (
    EncodedSplit,
    encode_split,
    make_batch,
    sorted_batches,
)
from slotfill.data.corpus import Example, ReadOptions, read_corpus
from slotfill.data.vocab import Vocabs
from slotfill.models.checkpoint import load_checkpoint
from slotfill.runtime import threads_for_batch


@dataclass
class Predictions:
    tags: list[list[str]]
    intents: list[str] | None  # None when the model does not predict intents
    # with confidence: per utterance, (start, end) of each predicted span -> probability
    confidence: list[dict[tuple[int, int], float]] | None = None
    intent_confidence: list[float] | None = None  # of each predicted intent


@torch.inference_mode()
def predict(model: nn.Module, split: EncodedSplit, vocabs: Vocabs, batch_size: int,
            on_batch: Callable[[int, int], None] | None = None,
            confidence: bool = False, slack: float = 0.2) -> Predictions:
    """Best tags (and intents) per utterance, in the split's order; `on_batch(done,
    total)` after each batch. `confidence` adds the confidences (Tagger.decode_with_
    confidence) of the spans and intents. `slack`: padding allowed per batch
    (data.batching.sorted_batches)."""
    if model.training:  # (a recursive call: not on every request of a loaded predictor)
        model.eval()
    tags: list[list[str]] = [[] for _ in range(len(split))]
    intents: list[str] | None = None
    spans_p = [{} for _ in range(len(split))] if confidence else None
    intents_p = None
    batches = sorted_batches(split.lengths, batch_size, slack)
    for done, index in enumerate(batches, start=1):
        batch = make_batch(split, index)
        with threads_for_batch(batch.words.numel(), batch.words.device):
            if confidence:
                tag_ids, intent_ids, sure = model.decode_with_confidence(batch)
            else:
                tag_ids, intent_ids = model.decode(batch)  # (B, T), (B,) or None
        rows = index.tolist()
        for row, i, n in zip(tag_ids.cpu().tolist(), rows, batch.lengths.tolist()):
            tags[i] = vocabs.tags.decode(row[:n])
        if intent_ids is not None:
            intents = intents or [""] * len(split)
            for i, intent in zip(rows, model.intent_names(intent_ids.cpu())):
                intents[i] = intent
        if confidence:
            for i, found in zip(rows, sure.spans):
                spans_p[i] = found
            if sure.intents is not None:
                intents_p = intents_p or [0.0] * len(split)
                for i, p in zip(rows, sure.intents):
                    intents_p[i] = p
        if on_batch:
            on_batch(done, len(batches))
    return Predictions(tags, intents, spans_p, intents_p)


class SplitScorer:
    """Scores models on one list of examples, tensorized once (e.g. dev, every epoch)."""

    def __init__(self, examples: Sequence[Example], vocabs: Vocabs,
                 device: torch.device | str = "cpu", batch_size: int = 256) -> None:
        self.examples, self.vocabs, self.batch_size = examples, vocabs, batch_size
        self.split = encode_split(examples, vocabs).to(torch.device(device))

    def predict(self, model: nn.Module,
                on_batch: Callable[[int, int], None] | None = None,
                confidence: bool = False) -> Predictions:
        return predict(model, self.split, self.vocabs, self.batch_size, on_batch, confidence)

    def counts(self, model: nn.Module,
               on_batch: Callable[[int, int], None] | None = None) -> Counts:
        return self.count(self.predict(model, on_batch))

    def count(self, predicted: Predictions) -> Counts:
        """The counts of predictions for these examples."""
        counts = Counts()
        for i, (example, tags) in enumerate(zip(self.examples, predicted.tags)):
            intent = predicted.intents[i] if predicted.intents is not None else None
            counts.add(example.tags, tags, example.intent, intent)
        return counts

    def score(self, model: nn.Module) -> dict:
        """See metrics.Counts.scores."""
        return self.counts(model).scores()


@dataclass
class EvalResult:
    scores: dict
    checkpoint: Path
    corpus: Path
    split: str
    versions: dict  # what the checkpoint was written with (slotfill, torch, python)
    examples: list[Example] = field(default_factory=list)  # the split, as scored
    predictions: Predictions | None = None  # for `examples`, in their order
    vocabs: Vocabs | None = None  # the checkpoint's (its words are those seen in training)


def evaluate_checkpoint(checkpoint_path: Path, data_path: str | None = None,
                        split: str = "test", device: str = "cpu",
                        batch_size: int = 256, confidence: bool = False) -> EvalResult:
    """Score a checkpoint on a split of its own corpus, or of the corpus at `data_path`
    (read in the checkpoint's data.format unless that is not how the files are laid out).
    `confidence` adds span and intent confidences to the predictions."""
    checkpoint = load_checkpoint(checkpoint_path)
    cfg = checkpoint.config
    path = data_path if data_path is not None else cfg.data.path
    fmt = cfg.data.format if data_path is None else "auto"
    options = ReadOptions.from_config(cfg.data)
    if data_path is not None:  # another corpus: the model's tokenizer, nothing else
        options = ReadOptions(tokenizer=cfg.data.tokenizer)
    corpus = read_corpus(path, fmt, splits=(split,), options=options)
    model = checkpoint.build_model(device)
    scorer = SplitScorer(corpus[split], checkpoint.vocabs, device, batch_size)
    predicted = scorer.predict(model, confidence=confidence)
    return EvalResult(scorer.count(predicted).scores(), checkpoint.path, corpus.path, split,
                      checkpoint.versions, list(corpus[split]), predicted, checkpoint.vocabs)
