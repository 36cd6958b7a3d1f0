"""Training runs: `train(cfg, run_dir)` fills a new run directory and returns the result;
`resume(run_dir)` continues an interrupted one exactly as if it had never stopped.

A run goes through set-up (corpus, model, optimiser; on resume their saved state), then
epochs (one training pass, dev scores, best.pt when dev F1 improves, last.pt always,
early stopping), then finish (best.pt reloaded and scored on dev and test, metrics
written). It never prints: progress goes to loggers (events.py), and the run directory's
files are written through rundir.RunDir. Model selection uses dev only, never test.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from slotfill.analysis.evaluate import SplitScorer
from slotfill.config import Config
from slotfill.errors import DataError, RunDirError, WriteError
from slotfill.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from slotfill.runtime import resolve_device
from slotfill.threads import release_idle_threads
from slotfill.training.distributed import Dist
from slotfill.training.events import (
    EpochRecord,
    Loggers,
    RunStart,
    Step,
    StopRun,
    TrainingLogger,
    TrainResult,
)
from slotfill.training.loggers import HistoryFile, file_loggers
from slotfill.training.prepare import Prepared, prepare
from slotfill.training.rundir import RunDir, space_warning
from slotfill.training.trainer import StopRequested, Trainer


class TrainingInterrupted(Exception):
    """A signal stopped training after last.pt was saved; `resume` continues the run."""

    def __init__(self, run_dir: Path, signum: int, where: str) -> None:
        super().__init__(f"interrupted by signal {signum} {where}")
        self.run_dir, self.signum, self.where = run_dir, signum, where


def train(cfg: Config, run_dir: str | Path, prepared: Prepared | None = None, *,
          loggers: Iterable[TrainingLogger] = (), dist: Dist | None = None) -> TrainResult:
    """Train `cfg` into the (new, empty) `run_dir`. Under torchrun, every worker calls
    this with the same arguments; rank 0 writes the files and calls the loggers."""
    run = RunDir(run_dir)
    dist = dist or Dist.from_env(resolve_device(cfg.train.device))
    if dist.is_main:
        run.write_config(cfg.to_yaml())
    return _Run(cfg, run, prepared, loggers, dist).execute()


def resume(run_dir: str | Path, *, loggers: Iterable[TrainingLogger] = (),
           dist: Dist | None = None) -> TrainResult:
    """Continue the run in `run_dir` from its last.pt (with as many processes as it
    started with)."""
    run = RunDir.open(run_dir)
    if run.read_status().get("state") == "finished":
        raise RunDirError(f"The run in {run.path} has finished", "nothing to resume; its "
                          "scores are in metrics.json")
    if not run.last.is_file():
        if run.read_status().get("unwritten"):
            # a write failed before the first last.pt: the run starts over from its own
            # config, in its own directory (with its seed, as it would have gone)
            from slotfill.config import load_config
            cfg = load_config(run.config_file, [])
            dist = dist or Dist.from_env(resolve_device(cfg.train.device))
            return _Run(cfg, run, None, loggers, dist).execute()
        raise RunDirError(f"No last.pt in {run.path}", "the run stopped before its first "
                          "checkpoint; start it again with `slotfill train`")
    last = load_checkpoint(run.last)
    if last.training_state is None:
        raise RunDirError(f"{run.last} holds no training state",
                          "it was not written by `slotfill train`")
    dist = dist or Dist.from_env(resolve_device(last.config.train.device))
    return _Run(last.config, run, None, loggers, dist).execute(last)


def selection_score(scores: dict, metric: str) -> float:
    """The dev score that train.select names: slot F1, or its mean with intent accuracy."""
    if metric == "f1_intent":
        return (scores["f1"] + scores["intent_accuracy"]) / 2
    return scores["f1"]


@dataclass
class Selection:
    """Model selection and early stopping on a dev score (train.select; the field keeps
    its name `best_f1` so that older runs resume)."""

    best_f1: float = -1.0
    best_epoch: int = 0
    stale: int = 0  # epochs since the best one

    def update(self, epoch: int, f1: float) -> bool:
        """Record an epoch's dev F1; True when it is a new best."""
        if f1 > self.best_f1:
            self.best_f1, self.best_epoch, self.stale = f1, epoch, 0
            return True
        self.stale += 1
        return False

    def exhausted(self, patience: int) -> bool:
        return bool(patience) and self.stale >= patience


class _Run:
    """One run's epochs and bookkeeping: checkpoints, status, signals, loggers."""

    def __init__(self, cfg: Config, run: RunDir, prepared: Prepared | None,
                 loggers: Iterable[TrainingLogger], dist: Dist) -> None:
        self.cfg, self.run, self.prepared, self.dist = cfg, run, prepared, dist
        main = dist.is_main  # only rank 0 writes files and reports progress
        self.loggers = Loggers([HistoryFile(run), *loggers, *file_loggers(cfg, run)]
                               if main else [])
        self.history: list[EpochRecord] = []
        self.selection = Selection()
        self.signal: int | None = None
        self.saved: int | None = None  # the epochs that last.pt and best.pt hold, once
        self.saved_best = 0  # written (what a failed write leaves intact)

    def execute(self, last: Checkpoint | None = None) -> TrainResult:
        self._status("running")
        stop = None  # why the run ends before train.epochs: early stopping, a logger's StopRun
        try:
            with self._signals():
                self._setup(last)
                for epoch in range(len(self.history) + 1, self.cfg.train.epochs + 1):
                    if self.selection.exhausted(self.cfg.train.patience):
                        # checked here, before the next epoch, so that a resumed run agrees
                        stop = StopRun("finished", self._early_stop_reason())
                        break
                    try:
                        self._epoch(epoch)
                    except StopRun as exc:
                        stop = exc
                        break
                result = self._finish(stop)
        except TrainingInterrupted as exc:
            self._status("interrupted", f"signal {exc.signum} {exc.where}")
            raise
        except KeyboardInterrupt:
            self._status("interrupted", "stopped at once by a second signal; last.pt holds "
                         "the last finished epoch")
            raise
        except WriteError as exc:
            raise self._write_failed(exc) from None
        except BaseException as exc:
            self._status("failed", f"{type(exc).__name__}: {exc}".strip())
            raise
        finally:
            self.loggers.close()
            # under active waiting, the pool's threads would spin on in a process that goes
            # on after training (the Python API, tune's next trial, a benchmark)
            release_idle_threads()
        return result

    def _write_failed(self, exc: WriteError) -> WriteError:
        """The run stopped because a file could not be written: status.json says so in
        words, and the error says what is safe and how to go on."""
        resume = f"slotfill train --resume {self.run.path}"
        if self.saved is not None:
            safe = (f"last.pt (epoch {self.saved}) and best.pt (epoch {self.saved_best}) "
                    "are intact")
        else:
            safe = "no checkpoint had been written yet; --resume starts the run over"
        fix = "once there is space" if exc.full else "once the file can be written"
        try:  # when not even status.json can be written, the error still reaches the user
            self._status("failed", f"{exc.title}; {safe}; continue with `{resume}` {fix}",
                         unwritten=str(exc.path))
        except WriteError:
            pass
        return WriteError(exc.path, exc.cause,
                          f"{exc.advice()}\nThe run stopped: {safe}.\n"
                          f"Continue it {fix}: {resume}")

    def _early_stop_reason(self) -> str:
        patience, epochs = self.cfg.train.patience, self.cfg.train.epochs
        score = "dev F1" if self.cfg.train.select == "f1" else \
            "dev (F1 + intent accuracy) / 2"
        return (f"stopped early after epoch {len(self.history)} of {epochs}: no better "
                f"{score} in {patience} epochs (train.patience={patience})")

    # ------------------------------------------------------------ phases

    def _setup(self, last: Checkpoint | None) -> None:
        """The model, optimiser and data (restored from last.pt on resume); dev scorer."""
        self.prepared = self.prepared or prepare(self.cfg)
        self.trainer = Trainer(self.cfg, self.prepared,
                               should_stop=lambda: self.signal is not None, dist=self.dist)
        resumed_from = self._restore(last) if last is not None else None
        self.dev = SplitScorer(self.dist.shard(self.prepared.corpus["valid"]),
                               self.prepared.vocabs, self.trainer.device,
                               self.cfg.train.eval_batch_size)
        model = self.trainer.model
        weight_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        space = space_warning(self.run, weight_bytes, self.cfg.train.ema > 0)
        self.loggers.start(RunStart(
            self.run.path, self.prepared.summary(), str(self.trainer.device),
            sum(p.numel() for p in model.parameters()), self.dist.world_size,
            self.cfg.train.epochs, resumed_from, self.trainer.threads.describe(),
            [space] if space and self.dist.is_main else []))

    def _restore(self, last: Checkpoint) -> str:
        """Weights, optimiser, random states, counters and history from last.pt; returns
        where the run continues."""
        if last.vocabs.to_dict() != self.prepared.vocabs.to_dict():
            raise DataError(f"The corpus at {self.cfg.data.path} changed since the run "
                            "started", "resume needs the same training data")
        self.trainer.model.load_state_dict(last.model_state)
        state = last.training_state
        self.trainer.load_state_dict(state["trainer"])
        self.history = [EpochRecord(**row) for row in state["history"]]
        self.selection = Selection(state["best_f1"], state["best_epoch"], state["stale"])
        self.saved, self.saved_best = len(self.history), self.selection.best_epoch
        position = self.trainer.position
        epoch = len(self.history) + 1
        if position is not None:
            return f"epoch {epoch}, after batch {position['step']}"
        return f"epoch {epoch}" if epoch <= self.cfg.train.epochs else "the end"

    def _epoch(self, epoch: int) -> None:
        """Train one epoch, score dev, write checkpoints, tell the loggers."""
        tc, trainer, dist, main = self.cfg.train, self.trainer, self.dist, self.dist.is_main
        epochs, first_step = tc.epochs, (epoch - 1) * trainer.batches_per_epoch
        started, lr = time.perf_counter(), trainer.lr

        def on_batch(done: int, total: int, loss) -> None:
            self.loggers.step(Step(epoch, epochs, "train", done, total, loss,
                                   first_step + done))
        try:
            stats = trainer.train_epoch(on_batch if main else None)
        except StopRequested:
            self._save_last({"epoch": epoch - 1, "dev_f1": self.selection.best_f1})
            raise TrainingInterrupted(self.run.path, self.signal or signal.SIGTERM,
                                      f"in epoch {epoch} after batch "
                                      f"{trainer.position['step']}") from None

        def on_dev_batch(done: int, total: int) -> None:
            self.loggers.step(Step(epoch, epochs, "dev", done, total))
        with trainer.evaluated_model() as model:
            scores = dist.sum_counts(self.dev.counts(model, on_dev_batch)).scores()
            improved = self.selection.update(epoch, selection_score(scores,
                                                                    self.cfg.train.select))
            meta = {"epoch": epoch, "dev_f1": scores["f1"]}
            if improved and main:
                save_checkpoint(self.run.best, model, self.cfg, self.prepared.vocabs, meta)
                self.saved_best = epoch
        trainer.end_epoch(selection_score(scores, self.cfg.train.select))
        self.history.append(EpochRecord(
            epoch=epoch, train_loss=stats.loss, dev_precision=scores["precision"],
            dev_recall=scores["recall"], dev_f1=scores["f1"], grad_norm=stats.grad_norm,
            lr=lr, seconds=time.perf_counter() - started, best=improved))
        self._save_last(meta)
        self.loggers.epoch(self.history[-1], self.history)
        if dist.any(self.signal is not None):
            raise TrainingInterrupted(self.run.path, self.signal or signal.SIGTERM,
                                      f"after epoch {epoch}")

    def _finish(self, stop: StopRun | None) -> TrainResult:
        """Scores of best.pt reloaded from disk (what users will get), on rank 0; the
        other ranks wait for it. The final status is written before the loggers hear of
        the end, so that what they write (the report) shows the state the run ends in."""
        corpus, vocabs, tc = self.prepared.corpus, self.prepared.vocabs, self.cfg.train
        dev = test = None
        if self.dist.is_main:
            device = self.trainer.device
            best = load_checkpoint(self.run.best).build_model(device)
            dev = SplitScorer(corpus["valid"], vocabs, device, tc.eval_batch_size).score(best)
            if "test" in corpus.splits:
                test = SplitScorer(corpus["test"], vocabs, device,
                                   tc.eval_batch_size).score(best)
            self.run.write_metrics(self.selection.best_epoch, len(self.history), dev, test)
        self.dist.barrier()
        result = TrainResult(self.run.path, self.selection.best_epoch, self.history, dev, test,
                             epochs=tc.epochs, state=stop.state if stop else "finished",
                             stopped_early=stop.reason if stop else None)
        best = f"best epoch {result.best_epoch}"
        self._status(result.state, f"{stop.reason}; {best}" if stop else best)
        self.loggers.end(result)  # a failure here still marks the run failed (execute)
        return result

    # ------------------------------------------------------------ bookkeeping

    def _save_last(self, meta: dict) -> None:
        state = {"trainer": self.trainer.state_dict(),  # collective: every rank calls it
                 "history": [asdict(r) for r in self.history], **asdict(self.selection)}
        if self.dist.is_main:
            save_checkpoint(self.run.last, self.trainer.model, self.cfg, self.prepared.vocabs,
                            meta, state)
            self.saved = meta["epoch"]

    def _status(self, state: str, reason: str = "", **extra) -> None:
        if self.dist.is_main:
            self.run.write_status(state, reason, **extra)

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
