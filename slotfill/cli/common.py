"""What every command shares: the Typer app, consoles, option types, error handling."""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from slotfill import __version__
from slotfill.errors import SlotfillError, UsageError

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="Train, evaluate and run slot-filling taggers.")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
_state = {"debug": False}


class Split(str, Enum):
    train = "train"
    valid = "valid"
    test = "test"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


ModelOption = Annotated[Optional[str], typer.Option(
    "--model", "-m", metavar="CKPT|RUN_DIR",
    help="checkpoint file, or run directory (its best.pt); default: newest run in ./runs/")]
DataOption = Annotated[Optional[str], typer.Option(
    "--data", help="corpus directory (default: the one the model was trained on)")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]
DeviceOption = Annotated[Device, typer.Option("--device", help="where to run the model")]


def friendly(command):
    """Turn user errors into a title + detail on stderr and an exit code, no traceback."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings():
                # torch warns at import when NumPy is absent; slotfill never needs NumPy
                warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
                return command(*args, **kwargs)
        except SlotfillError as exc:
            if _state["debug"]:
                raise
            err.print(f"[bold red]Error:[/] {escape_markup(exc.title)}")
            if exc.detail:
                err.print(exc.detail, markup=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("Interrupted.")
            raise typer.Exit(130) from None
    return wrapper


def _version(value: bool) -> None:
    if value:
        print(f"slotfill {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks for errors")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    _state["debug"] = debug


def print_table(table) -> None:
    """A table at the terminal's width, or at its natural width when stdout is a pipe or
    a file (no wrapping at 80 columns there)."""
    from rich.measure import Measurement

    if out.is_terminal:
        out.print(table)
        return
    width = out.width
    out.width = Measurement.get(out, out.options.update(width=1000), table).maximum
    try:
        out.print(table)
    finally:
        out.width = width


def escape_markup(text: str) -> str:
    from rich.markup import escape
    return escape(text)


def pick_model(model: str | None) -> Path:
    """The checkpoint of --model; without it the newest run's, named on stderr so that
    nobody is silently scored on another run than they think."""
    from slotfill.training.rundir import resolve_model
    path = resolve_model(model)
    if model is None:
        err.print(f"using the newest run: {path.parent} ({path.name})", markup=False)
    return path


def require_extra(extra: str, *modules: str) -> None:
    import importlib.util
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"This command needs {', '.join(missing)}",
                         f'install the extra: pip install "slotfill[{extra}]"')



@contextlib.contextmanager
def working(what: str) -> Iterator[None]:
    """A spinner with the time so far on stderr while a long step runs (on a terminal
    only: nothing in pipes, logs and tests)."""
    if not err.is_terminal:
        yield
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn(what), TimeElapsedColumn(), console=err,
                  transient=True) as progress:
        progress.add_task(what, total=None)
        yield
