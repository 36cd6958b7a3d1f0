"""Training runs: `train(cfg, run_dir)` fills a run directory and returns the result;
`resume(run_dir)` continues one. Never prints; callbacks report progress.

Run directory: config.yaml (resolved), status.json (running, finished, failed or
interrupted, with the reason), best.pt (best dev F1 so far), last.pt (end of the latest
epoch, or where an interrupted one stopped, with everything needed to continue exactly),
history.csv (one row per epoch), metrics.json and metrics.md (final dev and test scores of
the best checkpoint). Model selection uses dev only, never test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from slotfill import report
from slotfill.checkpoint import atomic_write, load_checkpoint, save_checkpoint
from slotfill.config import Config
from slotfill.corpus import read_corpus
from slotfill.datacheck import soft_problems
from slotfill.distributed import Dist
from slotfill.errors import DataError, RunDirError
from slotfill.evaluate import SplitScorer
from slotfill.rundir import read_status
from slotfill.runtime import resolve_device
from slotfill.trainer import Prepared, StopRequested, Trainer
from slotfill.vocab import Vocabs


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


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    history: list[EpochRecord]
    dev: dict  # scores of best.pt on dev
    test: dict | None  # scores of best.pt on test, when the corpus has a test split


class TrainingInterrupted(Exception):
    """A signal stopped training after last.pt was saved; `resume` continues the run."""

    def __init__(self, run_dir: Path, signum: int, where: str) -> None:
        super().__init__(f"interrupted by signal {signum} {where}")
        self.run_dir, self.signum, self.where = run_dir, signum, where


def prepare(cfg: Config) -> Prepared:
    """Read and check the corpus, build vocabularies: everything before a run directory."""
    corpus = read_corpus(cfg.data.path, cfg.data.format, splits=("train", "valid", "test"),
                         optional=("test",))
    corpus.warnings += soft_problems(corpus)
    if cfg.model.intent and any(e.intent is None for e in corpus["train"]):
        raise DataError(f"model.intent is true, but the training data in {corpus.path} has "
                        "no intent for every utterance",
                        "add intents (a `label` file per split, or `# intent:` lines), "
                        "or set model.intent=false")
    return Prepared(corpus, Vocabs.build(corpus["train"], chars=cfg.model.char != "none"))


def train(cfg: Config, run_dir: Path, prepared: Prepared | None = None, *,
          on_start: Callable[[dict], None] | None = None,
          on_batch: Callable[[int, int], None] | None = None,
          on_epoch: Callable[[EpochRecord], None] | None = None,
          dist: Dist | None = None) -> TrainResult:
    """Train `cfg` into the (new, empty) `run_dir`. Under torchrun, every worker calls
    this with the same arguments; rank 0 writes the files and calls the callbacks."""
    run_dir = Path(run_dir)
    dist = dist or Dist.from_env(resolve_device(cfg.train.device))
    if dist.is_main:
        (run_dir / "config.yaml").write_text(cfg.to_yaml(), encoding="utf-8")
    return _Run(cfg, run_dir, prepared, on_start, on_batch, on_epoch, dist).execute()


def resume(run_dir: Path, *, on_start: Callable[[dict], None] | None = None,
           on_batch: Callable[[int, int], None] | None = None,
           on_epoch: Callable[[EpochRecord], None] | None = None,
           dist: Dist | None = None) -> TrainResult:
    """Continue the run in `run_dir` from its last.pt, exactly as if never stopped
    (with as many processes as it started with)."""
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    if status.get("state") == "finished":
        raise RunDirError(f"The run in {run_dir} has finished", "nothing to resume; its "
                          "scores are in metrics.json")
    if not (run_dir / "last.pt").is_file():
        raise RunDirError(f"No last.pt in {run_dir}", "the run stopped before its first "
                          "checkpoint; start it again with `slotfill train`")
    last = load_checkpoint(run_dir / "last.pt")
    if last.training_state is None:
        raise RunDirError(f"{run_dir / 'last.pt'} holds no training state",
                          "it was not written by `slotfill train`")
    dist = dist or Dist.from_env(resolve_device(last.config.train.device))
    return _Run(last.config, run_dir, None, on_start, on_batch, on_epoch, dist).execute(last)


class _Run:
    """The epoch loop with its bookkeeping: checkpoints, history, status, signals."""

    def __init__(self, cfg, run_dir, prepared, on_start, on_batch, on_epoch, dist) -> None:
        self.cfg, self.run_dir, self.prepared, self.dist = cfg, run_dir, prepared, dist
        main = dist.is_main  # only rank 0 reports progress
        self.on_start = on_start if main else None
        self.on_batch = on_batch if main else None
        self.on_epoch = on_epoch if main else None
        self.signal: int | None = None

    def _status(self, state: str, reason: str = "") -> None:
        if self.dist.is_main:
            write_status(self.run_dir, state, reason)

    def execute(self, last=None) -> TrainResult:
        self._status("running")
        try:
            with self._signals():
                result = self._loop(last)
        except TrainingInterrupted as exc:
            self._status("interrupted", f"signal {exc.signum} {exc.where}")
            raise
        except KeyboardInterrupt:
            self._status("interrupted", "stopped at once by a second signal; last.pt holds "
                         "the last finished epoch")
            raise
        except BaseException as exc:
            self._status("failed", f"{type(exc).__name__}: {exc}".strip())
            raise
        self._status("finished", f"best epoch {result.best_epoch}")
        return result

    def _loop(self, last) -> TrainResult:
        cfg, run_dir, tc, dist = self.cfg, self.run_dir, self.cfg.train, self.dist
        main = dist.is_main
        prepared = self.prepared or prepare(cfg)
        corpus, vocabs = prepared.corpus, prepared.vocabs
        trainer = Trainer(cfg, prepared, should_stop=lambda: self.signal is not None,
                          dist=dist)
        model, device = trainer.model, trainer.device
        history: list[EpochRecord] = []
        best_f1, best_epoch, stale = -1.0, 0, 0
        if last is not None:  # resume: weights, optimiser, RNGs, counters, history
            if last.vocabs.to_dict() != vocabs.to_dict():
                raise DataError(f"The corpus at {cfg.data.path} changed since the run "
                                "started", "resume needs the same training data")
            model.load_state_dict(last.model_state)
            state = last.training_state
            trainer.load_state_dict(state["trainer"])
            history = [EpochRecord(**row) for row in state["history"]]
            best_f1, best_epoch, stale = state["best_f1"], state["best_epoch"], state["stale"]
        dev = SplitScorer(dist.shard(corpus["valid"]), vocabs, device, tc.eval_batch_size)
        if self.on_start:
            self.on_start({**prepared.summary(), "device": str(device),
                           "parameters": sum(p.numel() for p in model.parameters()),
                           "processes": dist.world_size,
                           "resumed_after": len(history) if last is not None else None})

        def save_last(meta: dict) -> None:
            state = {"trainer": trainer.state_dict(), "history": [asdict(r) for r in history],
                     "best_f1": best_f1, "best_epoch": best_epoch, "stale": stale}
            if main:
                save_checkpoint(run_dir / "last.pt", model, cfg, vocabs, meta, state)

        for epoch in range(len(history) + 1, tc.epochs + 1):
            if tc.patience and stale >= tc.patience:
                break  # early stopping on dev F1 (checked here so that resume agrees)
            started = time.perf_counter()
            lr = trainer.lr
            try:
                stats = trainer.train_epoch(self.on_batch)
            except StopRequested:
                step = trainer.position["step"]
                save_last({"epoch": epoch - 1, "dev_f1": best_f1})
                raise TrainingInterrupted(run_dir, self.signal or signal.SIGTERM,
                                          f"in epoch {epoch} after batch {step}") from None

            # dev evaluation (span counts summed over ranks), schedule, checkpoints
            scores = dist.sum_counts(dev.counts(model)).scores()
            trainer.end_epoch(scores["f1"])
            improved = scores["f1"] > best_f1
            if improved:
                best_f1, best_epoch, stale = scores["f1"], epoch, 0
            else:
                stale += 1
            meta = {"epoch": epoch, "dev_f1": scores["f1"]}
            if improved and main:
                save_checkpoint(run_dir / "best.pt", model, cfg, vocabs, meta)
            history.append(EpochRecord(
                epoch=epoch, train_loss=stats.loss, dev_precision=scores["precision"],
                dev_recall=scores["recall"], dev_f1=scores["f1"],
                grad_norm=stats.grad_norm, lr=lr, seconds=time.perf_counter() - started,
                best=improved))
            save_last(meta)
            if main:
                atomic_write(run_dir / "history.csv", lambda f: f.write(
                    report.history_csv(history, EpochRecord).encode()))
            if self.on_epoch:
                self.on_epoch(history[-1])
            if dist.any(self.signal is not None):
                raise TrainingInterrupted(run_dir, self.signal or signal.SIGTERM,
                                          f"after epoch {epoch}")

        # final scores of the best checkpoint, reloaded from disk (what users will get),
        # on rank 0; the other ranks wait for it
        dev_scores = test_scores = None
        if main:
            best = load_checkpoint(run_dir / "best.pt").build_model(device)
            dev_scores = SplitScorer(corpus["valid"], vocabs, device,
                                     tc.eval_batch_size).score(best)
            if "test" in corpus.splits:
                test_scores = SplitScorer(corpus["test"], vocabs, device,
                                          tc.eval_batch_size).score(best)
            write_metrics(run_dir, best_epoch, len(history), dev_scores, test_scores)
        dist.barrier()
        return TrainResult(run_dir, best_epoch, history, dev_scores, test_scores)

    @contextlib.contextmanager
    def _signals(self):
        """SIGINT/SIGTERM ask training to stop after the current batch (a second one
        stops at once); only in the main thread, where Python delivers signals."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        first = {}

        def handle(signum, frame):
            # a repeat within a second is the same request (a terminal's Ctrl-C reaches
            # torchrun's workers twice: directly and forwarded); a later one is impatience
            if self.signal is not None and time.monotonic() - first["at"] > 1.0:
                raise KeyboardInterrupt
            if self.signal is None:
                self.signal, first["at"] = signum, time.monotonic()
        previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def write_status(run_dir: Path, state: str, reason: str = "") -> None:
    payload = {"state": state, "reason": reason, "pid": os.getpid(),
               "host": socket.gethostname(),
               "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    atomic_write(run_dir / "status.json",
                 lambda f: f.write((json.dumps(payload, indent=2) + "\n").encode()))


def write_metrics(run_dir: Path, best_epoch: int, epochs: int, dev: dict,
                  test: dict | None) -> None:
    columns = {"dev": dev, **({"test": test} if test is not None else {})}
    payload = {"best_epoch": best_epoch, "epochs": epochs, **columns}
    atomic_write(run_dir / "metrics.json",
                 lambda f: f.write((json.dumps(payload, indent=2) + "\n").encode()))
    heading = f"Scores of best.pt (epoch {best_epoch} of {epochs})"
    atomic_write(run_dir / "metrics.md",
                 lambda f: f.write(report.metrics_markdown(columns, heading).encode()))
