"""Loggers that keep a run's record on disk (the console display is console.py's):
history.csv after every epoch; at the end, report.html and curves.svg (train.report);
TensorBoard event files throughout (train.tensorboard)."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path

from slotfill.atomic import failing_writes
from slotfill.config import Config
from slotfill.errors import ConfigError
from slotfill.training.events import EpochRecord, RunStart, Step, TrainingLogger, TrainResult
from slotfill.training.rundir import RunDir


class HistoryFile(TrainingLogger):
    """history.csv, rewritten after every epoch."""

    def __init__(self, run: RunDir) -> None:
        self.run = run

    def epoch(self, record: EpochRecord, history: list[EpochRecord]) -> None:
        self.run.write_history(history)


def file_loggers(cfg: Config, run: RunDir) -> list[TrainingLogger]:
    """The loggers the config asks for beyond history.csv."""
    loggers: list[TrainingLogger] = []
    if cfg.train.tensorboard:
        loggers.append(TensorBoardFile(run, cfg))
    if cfg.train.report:
        loggers.append(ReportFile(run))
    return loggers


# ---------------------------------------------------------------- the report

@dataclass
class Written:
    report: Path
    curves: Path | None  # curves.svg, when the run has a history
    seconds: float


def write_run_report(checkpoint: Path, data: str | None = None, split: str = "test",
                     output: Path | None = None, device: str = "cpu",
                     batch_size: int = 256) -> Written:
    """report.html for `checkpoint` on a split, written to `output` (default: the run
    directory that holds the checkpoint, with curves.svg beside it when the run has a
    history; with `output`, nothing is written into the run directory). analysis/
    report.py builds both."""
    from slotfill.analysis.report import RunRecord, build_report
    from slotfill.atomic import atomic_write

    started = time.perf_counter()
    run = RunDir(Path(checkpoint).parent)
    if run.config_file.is_file():
        record = RunRecord(run.path.name, run.read_config(), run.read_history(), run.summary())
    else:
        record = RunRecord(Path(checkpoint).name)
    report = build_report(checkpoint, record, data, split, device, batch_size)
    into_run = output is None
    output = run.report if into_run else Path(output)
    atomic_write(output, lambda f: f.write(report.html.encode("utf-8")))
    curves = None
    if report.curves_svg is not None and into_run:
        curves = run.curves
        atomic_write(curves, lambda f: f.write(report.curves_svg.encode("utf-8")))
    return Written(output, curves, time.perf_counter() - started)


class ReportFile(TrainingLogger):
    """report.html and curves.svg when the run ends: best.pt on test (on dev when the
    corpus has no test split), the numbers of metrics.json."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.device = "cpu"
        self.written: Written | None = None

    def start(self, run: RunStart) -> None:
        self.device = run.device  # where the run trains, and so where its model is scored

    def end(self, result: TrainResult) -> None:
        split = "test" if result.test is not None else "valid"
        self.written = write_run_report(self.run.best, split=split, device=self.device)


# ---------------------------------------------------------------- TensorBoard

def require_tensorboard() -> None:
    """A clear error, before any training, when train.tensorboard lacks its package."""
    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("train.tensorboard needs the tensorboard package",
                          'install the extra: pip install "slotfill[tensorboard]", or set '
                          "train.tensorboard=false")


class TensorBoardFile(TrainingLogger):
    """TensorBoard event files under the run directory's tensorboard/: per epoch the
    training loss, dev precision/recall/F1, learning rate, gradient norm and seconds;
    the training loss every train.log_every steps (the only reads of a step's loss
    tensor); the hyperparameters with the final scores at the end."""

    def __init__(self, run: RunDir, cfg: Config) -> None:
        require_tensorboard()
        self.run, self.cfg = run, cfg
        self.every = cfg.train.log_every or 50
        self.writer = None

    # The event files are written by a thread of TensorBoard's; a write that failed
    # there (a full disk) is raised by the next call here, which names the folder.

    def start(self, run: RunStart) -> None:
        from torch.utils.tensorboard import SummaryWriter
        with failing_writes(self.run.tensorboard):
            self.writer = SummaryWriter(log_dir=str(self.run.tensorboard))

    def step(self, step: Step) -> None:
        if step.phase == "train" and step.loss is not None and step.global_step % self.every == 0:
            with failing_writes(self.run.tensorboard):
                self.writer.add_scalar("train/loss_step", float(step.loss), step.global_step)

    def epoch(self, record: EpochRecord, history: list[EpochRecord]) -> None:
        with failing_writes(self.run.tensorboard):
            for tag, value in (("train/loss", record.train_loss),
                               ("dev/precision", record.dev_precision),
                               ("dev/recall", record.dev_recall), ("dev/f1", record.dev_f1),
                               ("train/lr", record.lr), ("train/grad_norm", record.grad_norm),
                               ("train/seconds", record.seconds)):
                self.writer.add_scalar(tag, value, record.epoch)
            self.writer.flush()

    def end(self, result: TrainResult) -> None:
        metrics = {"hparam/best_epoch": result.best_epoch,
                   **{f"hparam/dev_{k}": result.dev[k] for k in ("precision", "recall", "f1")}}
        if result.test is not None:
            metrics |= {f"hparam/test_{k}": result.test[k]
                        for k in ("precision", "recall", "f1")}
        with failing_writes(self.run.tensorboard):
            self.writer.add_hparams(_hparams(self.cfg), metrics, run_name=".")
            self.writer.flush()

    def close(self) -> None:
        # also called after a failure, which an error of its own must not hide; the
        # flushes of epoch() and end() have reported any write that failed
        if self.writer is not None:
            with contextlib.suppress(OSError):
                self.writer.close()
            self.writer = None


def _hparams(cfg: Config) -> dict:
    """The config as TensorBoard's flat hyperparameters (None as the text 'null')."""
    return {f"{section}.{key}": ("null" if value is None else value)
            for section, values in dataclasses.asdict(cfg).items()
            for key, value in values.items()}
