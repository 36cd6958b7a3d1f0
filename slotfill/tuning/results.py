"""What a study holds, as plain rows: each trial's state, parameters, dev score and run
directory (the summary table at the end of `slotfill tune`), and its best trial."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class TrialRow:
    number: int
    state: str  # complete | pruned | failed | running | waiting
    value: float | None  # dev score: of best.pt when complete, the last reported when pruned
    params: dict[str, Any]
    epochs: int  # epochs reported to the study
    run_dir: Path | None
    note: str  # why it failed, which trial it repeats
    best: bool = False


def trial_rows(study) -> list[TrialRow]:
    best = best_trial(study)
    return [_row(t, best) for t in study.get_trials(deepcopy=False)]


def trial_row(study, number: int) -> TrialRow:
    return _row(study.get_trials(deepcopy=False)[number], best_trial(study))


def best_trial(study):
    """The complete trial with the highest dev score, or None."""
    from optuna.trial import TrialState
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(complete, key=lambda t: t.value) if complete else None


def _row(trial, best) -> TrialRow:
    attrs = trial.user_attrs
    notes = []
    if "retry_of" in attrs:
        notes.append(f"repeats trial {attrs['retry_of']}")
    if attrs.get("interrupted"):
        notes.append("interrupted; queued again")
    elif "error" in attrs:
        notes.append(attrs["error"].splitlines()[0])
    elif trial.state.name == "FAIL":
        notes.append("its process stopped")
    run_dir = attrs.get("run_dir")
    state = "failed" if trial.state.name == "FAIL" else trial.state.name.lower()
    return TrialRow(trial.number, state,
                    trial.value, dict(trial.params), len(trial.intermediate_values),
                    Path(run_dir) if run_dir else None, "; ".join(notes),
                    best is not None and trial.number == best.number)
