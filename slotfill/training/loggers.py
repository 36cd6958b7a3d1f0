"""Loggers that keep a run's record on disk (the console display lives in the CLI)."""

from __future__ import annotations

from slotfill.training.events import EpochRecord, TrainingLogger
from slotfill.training.rundir import RunDir


class HistoryFile(TrainingLogger):
    """history.csv, rewritten after every epoch."""

    def __init__(self, run: RunDir) -> None:
        self.run = run

    def epoch(self, record: EpochRecord, history: list[EpochRecord]) -> None:
        self.run.write_history(history)
