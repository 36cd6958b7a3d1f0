"""What a training run reports, and the one way it reports it: a list of loggers.

A run calls `start` once, `step` after every training batch and every dev batch, `epoch`
after each epoch's dev evaluation and checkpoints, and `end` with the final scores. The
console display, history.csv, TensorBoard and the run report are all loggers; a run on
several processes gives its loggers to rank 0 only. A logger's `epoch` may raise StopRun
to end a (single-process) run after that epoch, as `slotfill tune` does to prune a trial.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunStart:
    run_dir: Path
    corpus: dict[str, Any]  # prepare.Prepared.summary(): path, format, sizes, words, ...
    device: str
    parameters: int
    processes: int
    epochs: int  # the most the run will train
    resumed_from: str | None = None  # e.g. "epoch 3, batch 40 of 140"; None for a new run
    threads: str = ""  # runtime.ThreadSetup.describe(): "threads: 2 (...), waiting: active"
    warnings: list[str] = field(default_factory=list)  # e.g. too little free disk space


@dataclass
class Step:
    epoch: int
    epochs: int
    phase: str  # "train" or "dev"
    done: int  # batches of this phase and epoch done so far
    total: int
    loss: Any = None  # train: this batch's loss, a detached tensor (reading it may sync a GPU)
    global_step: int = 0  # training batches since the run began


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    dev_precision: float
    dev_recall: float
    dev_f1: float
    grad_norm: float  # mean over the epoch's batches, before clipping
    lr: float  # at the epoch's start
    seconds: float  # training plus dev evaluation
    best: bool


@dataclass(repr=False)
class TrainResult:
    """What `slotfill.train` returns: the run directory (load it with `slotfill.load`),
    the epoch of `best.pt`, one record per epoch (as in `history.csv`), the dev and test
    scores of `best.pt` (the keys of `slotfill eval --json`; fractions in [0, 1]), the
    most epochs the run could train (`train.epochs`), the state it ended in (as
    `status.json` says it: `finished`, or `pruned` for a trial of `slotfill tune`) and, when
    it trained fewer epochs than that, why (`stopped_early`: early stopping after
    `train.patience` epochs without a better dev score, or a logger's StopRun); None when
    it trained them all. Its repr is one line of headline scores."""

    run_dir: Path
    best_epoch: int
    history: list[EpochRecord]
    dev: dict  # scores of best.pt on dev
    test: dict | None  # scores of best.pt on test, when the corpus has a test split
    epochs: int = 0  # train.epochs
    state: str = "finished"
    stopped_early: str | None = None

    def __repr__(self) -> str:
        # the full history and per-slot rows run to kilobytes; these are what one looks for
        parts = [f"run_dir={str(self.run_dir)!r}",
                 f"best_epoch={self.best_epoch} of {len(self.history)} trained"
                 + (f" (train.epochs {self.epochs})" if self.epochs else "")]
        for split, scores in (("dev", self.dev), ("test", self.test)):
            if scores:
                parts.append(f"{split}: " + ", ".join(
                    f"{key} {scores[key]:.4f}" for key in
                    ("f1", "intent_accuracy", "overall_accuracy") if key in scores))
        if self.state != "finished":
            parts.append(f"state={self.state!r}")
        if self.stopped_early:
            parts.append(f"stopped_early={self.stopped_early!r}")
        return f"TrainResult({', '.join(parts)})"


class StopRun(Exception):
    """Raised by a logger's `epoch` to end the run after that epoch, as early stopping
    would: best.pt is scored and the metrics written, and status.json says `state` (e.g.
    `pruned`) with `reason`. The other loggers still see the epoch."""

    def __init__(self, state: str, reason: str) -> None:
        super().__init__(reason)
        self.state, self.reason = state, reason


class TrainingLogger:
    """Override what you need. `close` is called however the run ends."""

    def start(self, run: RunStart) -> None:
        pass

    def step(self, step: Step) -> None:
        pass

    def epoch(self, record: EpochRecord, history: list[EpochRecord]) -> None:
        pass

    def end(self, result: TrainResult) -> None:
        pass

    def close(self) -> None:
        pass


class Loggers(TrainingLogger):
    """Several loggers as one, called in order."""

    def __init__(self, loggers: Iterable[TrainingLogger] = ()) -> None:
        self.loggers = list(loggers)

    def start(self, run: RunStart) -> None:
        for logger in self.loggers:
            logger.start(run)

    def step(self, step: Step) -> None:
        for logger in self.loggers:
            logger.step(step)

    def epoch(self, record: EpochRecord, history: list[EpochRecord]) -> None:
        stop = None
        for logger in self.loggers:
            try:
                logger.epoch(record, history)
            except StopRun as exc:
                stop = exc
        if stop is not None:
            raise stop

    def end(self, result: TrainResult) -> None:
        for logger in self.loggers:
            logger.end(result)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()
