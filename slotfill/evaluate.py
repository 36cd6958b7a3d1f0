"""Predictions and scores for a model on a list of examples or a corpus split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from slotfill.batching import EncodedSplit, bucket_batches, encode_split, make_batch
from slotfill.checkpoint import load_checkpoint
from slotfill.corpus import Example, read_corpus
from slotfill.metrics import Counts
from slotfill.models import Tagger
from slotfill.vocab import Vocabs


@torch.inference_mode()
def predict_ids(model: Tagger, split: EncodedSplit, batch_size: int) -> list[list[int]]:
    """Best tag ids per utterance, in the split's order."""
    model.eval()
    result: list[list[int]] = [[] for _ in range(len(split))]
    for index in bucket_batches(split.lengths, batch_size):
        batch = make_batch(split, index)
        ids = model.decode(batch).cpu().tolist()  # (B, T)
        for row, i, n in zip(ids, index.tolist(), batch.lengths.tolist()):
            result[i] = row[:n]
    return result


class SplitScorer:
    """Scores models on one list of examples, tensorized once (e.g. dev, every epoch)."""

    def __init__(self, examples: Sequence[Example], vocabs: Vocabs,
                 device: torch.device | str = "cpu", batch_size: int = 256) -> None:
        self.examples, self.vocabs, self.batch_size = examples, vocabs, batch_size
        self.split = encode_split(examples, vocabs.words).to(torch.device(device))

    def predict(self, model: Tagger) -> list[list[str]]:
        ids = predict_ids(model, self.split, self.batch_size)
        return [self.vocabs.tags.decode(row) for row in ids]

    def counts(self, model: Tagger) -> Counts:
        counts = Counts()
        for example, tags in zip(self.examples, self.predict(model)):
            counts.add(example.tags, tags)
        return counts

    def score(self, model: Tagger) -> dict:
        """See metrics.Counts.scores."""
        return self.counts(model).scores()


@dataclass
class EvalResult:
    scores: dict
    checkpoint: Path
    corpus: Path
    split: str


def evaluate_checkpoint(checkpoint_path: Path, data_path: str | None = None,
                        split: str = "test", device: str = "cpu",
                        batch_size: int = 256) -> EvalResult:
    """Score a checkpoint on a split of its own corpus, or of the corpus at `data_path`
    (read in the checkpoint's data.format unless that is not how the files are laid out)."""
    checkpoint = load_checkpoint(checkpoint_path)
    cfg = checkpoint.config
    path = data_path if data_path is not None else cfg.data.path
    fmt = cfg.data.format if data_path is None else "auto"
    corpus = read_corpus(path, fmt, splits=(split,))
    model = checkpoint.build_model(device)
    scores = SplitScorer(corpus[split], checkpoint.vocabs, device, batch_size).score(model)
    return EvalResult(scores, checkpoint.path, corpus.path, split)
