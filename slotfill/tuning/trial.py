"""One trial of a study: a point of the search space trained as a normal run directory,
its dev score reported to Optuna after every epoch, and stopped early when the pruner says
so (the run then ends as after early stopping, with status `pruned`)."""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slotfill.config import Config, resolve_paths
from slotfill.errors import ConfigError
from slotfill.training.events import EpochRecord, StopRun, TrainingLogger
from slotfill.training.rundir import RunDir
from slotfill.tuning.space import SearchSpace, with_settings
from slotfill.tuning.study import local_processes, thread_share


DEV_SCORES = ("f1", "intent_accuracy", "overall_accuracy")  # kept with each trial


class InvalidPoint(Exception):
    """The sampled values do not make a valid config together (the trial fails, the study
    goes on)."""


@dataclass
class TrialStart:
    number: int
    params: dict[str, Any]
    run_dir: Path
    threads: int  # the trial's train.threads (0: follow the free cores)
    processes: int  # processes of the study training on this machine, this one included
    retry_of: int | None  # the trial this one repeats


class PruningLogger(TrainingLogger):
    """Reports the best dev F1 so far after each epoch; raises StopRun when the pruner
    stops the trial (never after the last epoch: there is nothing left to save)."""

    def __init__(self, trial, epochs: int) -> None:
        self.trial, self.epochs = trial, epochs
        self.pruned_after: int | None = None

    def epoch(self, record: EpochRecord, history: list[EpochRecord]) -> None:
        best = max(r.dev_f1 for r in history)
        self.trial.report(best, record.epoch)
        if record.epoch < self.epochs and self.trial.should_prune():
            self.pruned_after = record.epoch
            raise StopRun("pruned", f"pruned by slotfill tune after epoch {record.epoch} "
                          f"(best dev F1 {best:.4f}, below the study's other trials)")


def config_for(raw: dict, params: dict[str, Any]) -> Config:
    """The config of a point of the space; InvalidPoint when its values do not combine."""
    try:
        return resolve_paths(Config.from_dict(with_settings(raw, params)))
    except ConfigError as exc:
        raise InvalidPoint(exc.detail) from None


def run_trial(trial, study, raw: dict, space: SearchSpace, directory: Path,
              loggers_for: Callable[[TrialStart], Iterable[TrainingLogger]]) -> float:
    """The objective: train the trial's point of the space into directory/trial-NNN and
    return its dev score (train.select's, of best.pt); optuna.TrialPruned when pruned."""
    import optuna

    from slotfill.training import run as training

    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    params = space.suggest(trial)
    try:
        cfg = config_for(raw, params)
    except InvalidPoint as exc:
        trial.set_user_attr("error", f"invalid config: {exc}")
        raise
    processes = local_processes(study)
    threads = thread_share(cfg.train.threads, processes)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, threads=threads))
    run = RunDir.create("trial", directory / f"trial-{trial.number:03d}")
    trial.set_user_attr("run_dir", str(run.path.resolve()))
    start = TrialStart(trial.number, params, run.path, threads, processes,
                       trial.user_attrs.get("retry_of"))
    pruning = PruningLogger(trial, cfg.train.epochs)
    try:
        result = training.train(cfg, run.path, loggers=[*loggers_for(start), pruning])
    except (training.TrainingInterrupted, KeyboardInterrupt):
        trial.set_user_attr("interrupted", True)
        raise
    except BaseException as exc:
        trial.set_user_attr("error", f"{type(exc).__name__}: {exc}".strip())
        raise
    trial.set_user_attr("dev", {k: result.dev[k] for k in DEV_SCORES if k in result.dev})
    if pruning.pruned_after is not None:
        raise optuna.TrialPruned(f"after epoch {pruning.pruned_after}")
    return training.selection_score(result.dev, cfg.train.select)
