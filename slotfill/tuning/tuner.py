"""`slotfill tune`: a study of one config over a search space, on Optuna.

`Tuner(...)` validates the config, the search space and the options before anything is
written; `open()` checks the corpus and creates or joins the study; `run()` trains trials,
yielding each one's row, until the study has `trials` trials complete, pruned or running
(so re-running the same command after a kill continues the study, and several processes
share its trials); `rows()` is the summary. The best config so far is kept in best.yaml.
"""

from __future__ import annotations

import contextlib
import re
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from slotfill.atomic import atomic_write
from slotfill.config import Config, apply_overrides, read_yaml, resolve_paths
from slotfill.errors import ConfigError, RunDirError, UsageError
from slotfill.training.events import TrainingLogger
from slotfill.tuning.results import TrialRow, best_trial, trial_row, trial_rows
from slotfill.tuning.space import default_space, read_space
from slotfill.tuning.study import (
    default_storage,
    fail_lost_trials,
    open_study,
    quiet_experimental,
    requeue,
    study_directory,
)
from slotfill.tuning.trial import InvalidPoint, TrialStart, config_for, run_trial

PRUNERS = ("median", "halving", "none")
MAX_INVALID = 10  # sampled points in a row that make no valid config: the space is wrong


class TuneInterrupted(Exception):
    """A signal stopped the study; the trial it stopped (if any) was queued again."""

    def __init__(self, signum: int, trial: int | None) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum, self.trial = signum, trial


def make_pruner(pruner):
    """median: a trial stops when its best dev F1 so far is below the median of the
    complete trials at the same epoch (from epoch 3, once 4 trials are complete); halving:
    successive halving (rungs at epochs 2, 6, 18, ..., the best third goes on); none.
    An Optuna pruner object is taken as it is."""
    import optuna

    if not isinstance(pruner, str):
        return pruner
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=3)
    if pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3)
    if pruner == "none":
        return optuna.pruners.NopPruner()
    raise UsageError(f"Unknown pruner {pruner!r}", f"choose one of {', '.join(PRUNERS)}")


class Tuner:
    def __init__(self, config: str | None, overrides: Iterable[str] = (), trials: int = 20, *,
                 space: Path | None = None, storage: str | None = None,
                 study: str | None = None, pruner: Any = "median") -> None:
        from slotfill.resources import find_config

        overrides = list(overrides)
        self.raw = read_yaml(find_config(config))
        apply_overrides(self.raw, overrides)
        self.cfg = resolve_paths(Config.from_dict(self.raw))
        fixed = {item.partition("=")[0].strip() for item in overrides}
        self.space = read_space(space) if space is not None else default_space(self.cfg, fixed)
        self.space.check_against(self.raw, overrides)
        self.name = study or (Path(config).stem if config else "bilstm")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise UsageError(f"Invalid study name {self.name!r}",
                             "use letters, digits, '.', '_' and '-' (it names a directory)")
        self.trials = trials
        self.directory = study_directory(self.name)
        self.storage = storage or default_storage(self.directory)
        self.pruner = make_pruner(pruner)
        self.study = None
        self._stop: int | None = None  # a signal that arrived between trials

    @property
    def best_file(self) -> Path:
        return self.directory / "best.yaml"

    # ------------------------------------------------------------ the study

    def open(self) -> None:
        """Check the corpus, then create or join the study."""
        from slotfill.training.prepare import prepare

        prepare(self.cfg)  # a data error now, not in the first trial
        if (self.storage == default_storage(self.directory)
                and not (self.directory / "study.db").exists()
                and any(self.directory.glob("trial-*"))):
            raise RunDirError(f"{self.directory} holds trials but no study.db",
                              "its study is gone; move the directory away, or choose "
                              "another --study NAME")
        self.study = open_study(self.name, self.storage, self.directory, self.pruner,
                                self._fingerprint())

    def _fingerprint(self) -> dict:
        """What every process of the study must agree on: the config (but where it runs)
        and the space."""
        config = self.cfg.to_dict()
        for key in ("threads", "device"):
            config["train"].pop(key)
        return {"config": config, "space": self.space.to_dict()}

    def remaining(self) -> int:
        """Trials still to start: `trials` minus those complete, pruned or running."""
        from optuna.trial import TrialState

        taken = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        return self.trials - len(self.study.get_trials(deepcopy=False, states=taken))

    def rows(self) -> list[TrialRow]:
        return trial_rows(self.study)

    # ------------------------------------------------------------ trials

    def run(self, loggers_for: Callable[[TrialStart], Iterable[TrainingLogger]] =
            lambda start: ()) -> Iterator[TrialRow]:
        """Train trials until the study has enough; yields each one's row. A signal stops
        the trial in progress after its current batch (its parameters are queued to run
        again) or the study before its next trial: TuneInterrupted either way."""
        from slotfill.training.run import TrainingInterrupted

        invalid = 0
        with self._signals():
            while self._stop is None:
                fail_lost_trials(self.study)
                if self.remaining() <= 0:
                    return
                started: dict[str, int] = {}

                def objective(trial):
                    started["number"] = trial.number
                    return run_trial(trial, self.study, self.raw, self.space, self.directory,
                                     loggers_for)
                try:
                    with quiet_experimental():
                        self.study.optimize(objective, n_trials=1, catch=(InvalidPoint,))
                except (TrainingInterrupted, KeyboardInterrupt) as exc:
                    number = started.get("number")
                    if number is not None:
                        requeue(self.study, self.study.get_trials(deepcopy=False)[number])
                    raise TuneInterrupted(getattr(exc, "signum", signal.SIGINT),
                                          number) from None
                row = trial_row(self.study, started["number"])
                invalid = invalid + 1 if row.state == "failed" else 0
                if invalid >= MAX_INVALID:
                    raise ConfigError(f"{MAX_INVALID} points of the search space in a row "
                                      "make no valid config", f"the last one: {row.note}\n"
                                      "narrow the space so its values combine")
                self.write_best()
                yield row
        raise TuneInterrupted(self._stop, None)

    def write_best(self) -> Path | None:
        """best.yaml: the config of the best complete trial, for `slotfill train`."""
        best = best_trial(self.study)
        if best is None:
            return None
        cfg = config_for(self.raw, best.params)
        score = "F1" if cfg.train.select == "f1" else "(F1 + intent accuracy) / 2"
        header = (f"# The best config of study {self.name}: trial {best.number}, dev "
                  f"{score} {100 * best.value:.2f}% (slotfill tune).\n"
                  f"# Run: slotfill train {self.best_file}\n")
        atomic_write(self.best_file, lambda f: f.write((header + cfg.to_yaml()).encode()))
        return self.best_file

    @contextlib.contextmanager
    def _signals(self):
        """SIGINT/SIGTERM between trials end the study before the next one (a second one
        at once); during a trial the run's own handler stops it after the current batch."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(signum, frame):
            if self._stop is not None:
                raise KeyboardInterrupt
            self._stop = signum
        previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
