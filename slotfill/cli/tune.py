"""`slotfill tune`: a hyperparameter search on Optuna; every trial a run directory."""

from __future__ import annotations

import shlex
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from slotfill.cli.common import app, err, friendly, out, print_table, require_extra
from slotfill.cli.train import split_train_args
from slotfill.training.console import TrainDisplay

DEFAULT_SPACE = (
    "without it, the default space of the config's tagger: train.lr 3e-4..3e-3 (log), "
    "model.hidden_size 64..384 (step 32), model.embedding_dim 50/100/200 (unless "
    "model.embeddings), model.embedding_dropout, output_dropout and word_dropout 0..0.5, "
    "train.batch_size 16/32/64; rnn and jordan also model.nonlinearity tanh/relu and "
    "model.context_window 0..4; keys set by an override are left out (--dry-run prints it)")


class Pruner(str, Enum):
    median = "median"
    halving = "halving"
    none = "none"


@app.command()
@friendly
def tune(
    args: Annotated[Optional[list[str]], typer.Argument(
        metavar="[CONFIG] [KEY=VALUE]...",
        help="the config to tune (a file or bundled config name; default: bilstm) and "
             "overrides that every trial shares, such as train.epochs=10")] = None,
    trials: Annotated[int, typer.Option(
        "--trials", "-n", min=1, metavar="N",
        help="trials the study should have (complete or pruned); run the same command "
             "again to continue a stopped study, with a larger N to extend it")] = ...,
    space: Annotated[Optional[Path], typer.Option(
        "--space", metavar="FILE",
        help="YAML search space: config keys mapped to ranges {low, high, step or log} or "
             "lists of choices; " + DEFAULT_SPACE)] = None,
    storage: Annotated[Optional[str], typer.Option(
        "--storage", metavar="URL",
        help="Optuna storage (a database URL, e.g. postgresql://user@host/db) that "
             "processes on several machines share (default: sqlite:///runs/tune-<study>/"
             "study.db, for the processes of this machine)")] = None,
    study: Annotated[Optional[str], typer.Option(
        "--study", metavar="NAME",
        help="the study's name (default: the config's); its trials go to "
             "runs/tune-NAME/trial-NNN/")] = None,
    pruner: Annotated[Pruner, typer.Option(
        "--pruner", help="stop unpromising trials early on their dev F1: median (below the "
                         "median of the complete trials at the same epoch, from epoch 3, "
                         "once 4 are complete), halving (successive halving, rungs at epochs 2, 6, 18), "
                         "or none")] = Pruner.median,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="validate the config and the space, print the plan, train nothing")]
        = False,
) -> None:
    """Search hyperparameters: train trials of a config over a search space, each a run
    directory; print a summary table and write the best config to
    runs/tune-<study>/best.yaml, for `slotfill train`. Several processes (and machines,
    with --storage) can work on one study at once."""
    require_extra("tune", "optuna")
    from slotfill.threads import set_waiting
    set_waiting("active")  # before torch starts: trials train as `slotfill train` does
    from slotfill.tuning.tuner import Tuner, TuneInterrupted

    config, overrides = split_train_args(args or [])
    tuner = Tuner(config, overrides, trials, space=space, storage=storage, study=study,
                  pruner=pruner.value)
    _show_plan(tuner)
    if dry_run:
        out.print("dry run: config and search space are valid; nothing was trained")
        return
    tuner.open()
    rows = tuner.rows()
    if rows:
        done = sum(row.state in ("complete", "pruned") for row in rows)
        out.print(f"continuing the study: {done} of {trials} trials done")
    try:
        for row in tuner.run(_trial_loggers):
            _show_outcome(row)
    except TuneInterrupted as exc:
        stopped = (f"trial {exc.trial} stopped; it runs again" if exc.trial is not None
                   else "stopped between trials")
        err.print(f"Interrupted: {stopped} when the study continues.", markup=False)
        err.print(f"Continue with: slotfill {shlex.join(sys.argv[1:])}", markup=False)
        raise typer.Exit(130 if exc.signum == signal.SIGINT else 128 + exc.signum) from None
    _show_summary(tuner)


def _show_plan(tuner) -> None:
    out.print(f"study {tuner.name}: {tuner.trials} trials in {tuner.directory}/, "
              f"storage {tuner.storage}", markup=False)
    out.print(f"search space ({tuner.space.source}):", markup=False)
    for param in tuner.space.params:
        out.print(f"  {param.describe()}", markup=False)
    out.print(f"pruner: {type(tuner.pruner).__name__}", markup=False)


def _trial_loggers(start) -> list:
    values = " ".join(f"{key}={_value(value)}" for key, value in start.params.items())
    notes = [f"repeats trial {start.retry_of}"] if start.retry_of is not None else []
    if start.processes > 1:
        notes.append(f"{start.threads} thread{'s' * (start.threads != 1)}: "
                     f"{start.processes} processes of the study share this machine")
    out.print()
    out.print(f"[bold]trial {start.number}[/]: {values}"
              + (f" ({'; '.join(notes)})" if notes else ""), highlight=False)
    return [TrialDisplay(out, err)]


class TrialDisplay(TrainDisplay):
    """A trial's epochs as `slotfill train` shows them, without its start and end blocks."""

    def start(self, run, header: bool = True) -> None:
        from slotfill.analysis import tables
        self.out.print(tables.epoch_header(), markup=False)

    def end(self, result) -> None:
        self.close()


def _show_outcome(row) -> None:
    where = f" ({_shown(row.run_dir)})" if row.run_dir else ""
    if row.state == "complete":
        out.print(f"trial {row.number} complete: dev score {_score(row.value)}{where}",
                  markup=False)
    elif row.state == "pruned":
        out.print(f"trial {row.number} pruned after epoch {row.epochs}: best dev F1 "
                  f"{_score(row.value)}{where}", markup=False)
    else:
        out.print(f"trial {row.number} {row.state}: {row.note}{where}", markup=False)


def _show_summary(tuner) -> None:
    from rich import box
    from rich.table import Table

    rows = tuner.rows()
    keys = [param.key for param in tuner.space.params]
    table = Table(caption="dev: train.select's score of best.pt in percent (pruned: the best "
                          "dev F1 when stopped); * the best trial",
                  caption_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("trial", "state", "dev", "epochs", *(k.partition(".")[2] for k in keys),
                 "run", "note"):
        table.add_column(name, justify="left" if name in ("state", "run", "note") else "right",
                         no_wrap=name != "note")
    for row in rows:
        table.add_row(f"{row.number}{' *' if row.best else ''}", row.state, _score(row.value),
                      str(row.epochs) if row.epochs else "",
                      *(_value(row.params[k]) if k in row.params else "" for k in keys),
                      row.run_dir.name if row.run_dir else "", row.note)
    out.print()
    print_table(table)
    best = next((row for row in rows if row.best), None)
    if best is None:
        out.print("no trial has completed yet: no best.yaml", markup=False)
    else:
        out.print(f"best: trial {best.number}, dev score {_score(best.value)}; its config: "
                  f"{tuner.best_file}", markup=False)
        out.print(f"train it: slotfill train {tuner.best_file}", markup=False)
    out.print(f"every trial's run: slotfill runs {tuner.directory}", markup=False)


def _shown(path: Path) -> Path:
    """A path relative to the current directory when it lies inside it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def _score(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def _value(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) \
        else str(value)
