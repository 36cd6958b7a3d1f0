"""Training: `train(cfg, run_dir)` fills a run directory and returns the result; never prints.

Run directory: config.yaml (resolved), best.pt (best dev F1 so far), last.pt (end of the
latest epoch), history.csv (one row per epoch), metrics.json and metrics.md (final dev and
test scores of the best checkpoint). Model selection uses dev only, never test.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from slotfill import report
from slotfill.batching import Batch, batches_for, encode_split, make_batch
from slotfill.checkpoint import atomic_write, load_checkpoint, save_checkpoint
from slotfill.config import Config
from slotfill.corpus import Corpus, read_corpus
from slotfill.evaluate import SplitScorer
from slotfill.models import Tagger, build_model
from slotfill.runtime import configure_threads, resolve_device, seed_everything
from slotfill.vocab import UNK, Vocabs


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    dev_precision: float
    dev_recall: float
    dev_f1: float
    grad_norm: float  # mean over the epoch's batches, before clipping
    lr: float
    seconds: float  # training plus dev evaluation
    best: bool


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    history: list[EpochRecord]
    dev: dict  # scores of best.pt on dev
    test: dict | None  # scores of best.pt on test, when the corpus has a test split
    stopped_early: bool


@dataclass
class Prepared:
    """The corpus and vocabularies, read and validated before a run directory exists."""

    corpus: Corpus
    vocabs: Vocabs

    def summary(self) -> dict[str, Any]:
        return {"corpus": str(self.corpus.path), "format": self.corpus.format,
                "sizes": {name: len(split) for name, split in self.corpus.splits.items()},
                "words": len(self.vocabs.words), "tags": len(self.vocabs.tags),
                "warnings": self.corpus.warnings}


def prepare(cfg: Config) -> Prepared:
    corpus = read_corpus(cfg.data.path, cfg.data.format, splits=("train", "valid", "test"),
                         optional=("test",))
    return Prepared(corpus, Vocabs.build(corpus["train"]))


@dataclass
class EpochStats:
    loss: float  # mean training loss over the epoch's batches
    grad_norm: float  # mean gradient norm, before clipping
    batches: int
    tokens: int
    seconds: float


class Trainer:
    """The model, its optimiser and the tensorized training data; `train_epoch` runs one
    pass. Seeds, threads and device are set up here, so runs are reproducible."""

    def __init__(self, cfg: Config, prepared: Prepared) -> None:
        tc = cfg.train
        seed_everything(tc.seed)
        configure_threads(tc.threads)
        self.cfg, self.vocabs = cfg, prepared.vocabs
        self.device = resolve_device(tc.device)
        examples = prepared.corpus["train"]
        self.data = encode_split(examples, self.vocabs.words, self.vocabs.tags).to(self.device)
        self.model = build_model(cfg.model, len(self.vocabs.words),
                                 len(self.vocabs.tags)).to(self.device)
        self.optimizer = make_optimizer(cfg, self.model)
        self.word_dropout = WordDropout(examples, self.vocabs, cfg.model.word_dropout,
                                        self.device)
        self.generator = torch.Generator().manual_seed(tc.seed)  # batch order

    def train_epoch(self, on_batch: Callable[[int, int], None] | None = None) -> EpochStats:
        tc = self.cfg.train
        started = time.perf_counter()
        self.model.train()
        batches = batches_for(self.data, tc.batching, tc.batch_size, self.generator)
        loss_sum = torch.zeros((), device=self.device)
        norm_sum = torch.zeros((), device=self.device)
        max_norm = tc.clip if tc.clip > 0 else math.inf
        for step, index in enumerate(batches, start=1):
            batch = self.word_dropout(make_batch(self.data, index))
            loss = self.model.loss(batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm_sum += torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
            self.optimizer.step()
            loss_sum += loss.detach()
            if on_batch:
                on_batch(step, len(batches))
        return EpochStats(float(loss_sum) / len(batches), float(norm_sum) / len(batches),
                          len(batches), int(self.data.lengths.sum()),
                          time.perf_counter() - started)


def train(cfg: Config, run_dir: Path, prepared: Prepared | None = None, *,
          on_start: Callable[[dict], None] | None = None,
          on_batch: Callable[[int, int], None] | None = None,
          on_epoch: Callable[[EpochRecord], None] | None = None) -> TrainResult:
    """Train `cfg` into the (new, empty) `run_dir`. Callbacks report progress."""
    run_dir = Path(run_dir)
    prepared = prepared or prepare(cfg)
    corpus, vocabs, tc = prepared.corpus, prepared.vocabs, cfg.train
    trainer = Trainer(cfg, prepared)
    model, device = trainer.model, trainer.device
    dev = SplitScorer(corpus["valid"], vocabs, device, tc.eval_batch_size)
    (run_dir / "config.yaml").write_text(cfg.to_yaml(), encoding="utf-8")
    if on_start:
        on_start({**prepared.summary(), "device": str(device),
                  "parameters": sum(p.numel() for p in model.parameters())})

    history: list[EpochRecord] = []
    best_f1, best_epoch, stale = -1.0, 0, 0
    for epoch in range(1, tc.epochs + 1):
        started = time.perf_counter()
        stats = trainer.train_epoch(on_batch)

        # dev evaluation, checkpoints, history
        scores = dev.score(model)
        improved = scores["f1"] > best_f1
        if improved:
            best_f1, best_epoch, stale = scores["f1"], epoch, 0
        else:
            stale += 1
        meta = {"epoch": epoch, "dev_f1": scores["f1"]}
        if improved:
            save_checkpoint(run_dir / "best.pt", model, cfg, vocabs, meta)
        save_checkpoint(run_dir / "last.pt", model, cfg, vocabs, meta,
                        {"optimizer": trainer.optimizer.state_dict()})
        record = EpochRecord(
            epoch=epoch, train_loss=stats.loss, dev_precision=scores["precision"],
            dev_recall=scores["recall"], dev_f1=scores["f1"], grad_norm=stats.grad_norm,
            lr=trainer.optimizer.param_groups[0]["lr"],
            seconds=time.perf_counter() - started, best=improved)
        history.append(record)
        atomic_write(run_dir / "history.csv",
                     lambda f: f.write(report.history_csv(history, EpochRecord).encode()))
        if on_epoch:
            on_epoch(record)

        # early stopping on dev F1
        if tc.patience and stale >= tc.patience:
            break

    # final scores of the best checkpoint (reloaded from disk: what users will get)
    best = load_checkpoint(run_dir / "best.pt").build_model(device)
    dev_scores = dev.score(best)
    test_scores = None
    if "test" in corpus.splits:
        test_scores = SplitScorer(corpus["test"], vocabs, device, tc.eval_batch_size).score(best)
    write_metrics(run_dir, best_epoch, len(history), dev_scores, test_scores)
    return TrainResult(run_dir, best_epoch, history, dev_scores, test_scores,
                       stopped_early=len(history) < tc.epochs)


def make_optimizer(cfg: Config, model: Tagger) -> torch.optim.Optimizer:
    tc = cfg.train
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
    return kinds[tc.optimizer](model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)


class WordDropout:
    """Replaces words seen once in training by <unk> with probability p, so that the
    model learns an <unk> embedding for the unseen words of dev, test and users."""

    def __init__(self, examples, vocabs: Vocabs, p: float, device: torch.device) -> None:
        self.p = p
        counts = Counter(token for example in examples for token in example.tokens)
        self.singleton = torch.zeros(len(vocabs.words), dtype=torch.bool)  # (V,)
        self.singleton[vocabs.words.encode(w for w, n in counts.items() if n == 1)] = True
        self.singleton = self.singleton.to(device)
        self.unk = vocabs.words.index(UNK)

    def __call__(self, batch: Batch) -> Batch:
        if self.p == 0:
            return batch
        drop = self.singleton[batch.words] & (torch.rand(batch.words.shape,
                                                         device=batch.words.device) < self.p)
        batch.words = batch.words.masked_fill(drop, self.unk)
        return batch


def write_metrics(run_dir: Path, best_epoch: int, epochs: int, dev: dict,
                  test: dict | None) -> None:
    columns = {"dev": dev, **({"test": test} if test is not None else {})}
    payload = {"best_epoch": best_epoch, "epochs": epochs, **columns}
    atomic_write(run_dir / "metrics.json",
                 lambda f: f.write((json.dumps(payload, indent=2) + "\n").encode()))
    heading = f"Scores of best.pt (epoch {best_epoch} of {epochs})"
    atomic_write(run_dir / "metrics.md",
                 lambda f: f.write(report.metrics_markdown(columns, heading).encode()))
