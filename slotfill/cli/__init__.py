"""`slotfill` command line: a thin Typer adapter over train/evaluate/predict.

Each command parses its arguments, calls one importable function and renders the result.
torch is imported inside the commands so that `slotfill --help` stays fast.
User mistakes (SlotfillError) print a title and detail on stderr and exit non-zero.
Modules: common (app, consoles, options, errors), train, tune, inspect (eval, runs,
compare, data check), report, predict, use (export, serve), loop (select), ensemble,
configs (configs, init config); importing them registers their commands, in the order
`slotfill --help` lists them.
"""

import gc

from slotfill.cli import train, tune, inspect, report, predict, use, loop, ensemble, configs  # noqa: I001,E501
from slotfill.cli.common import app
from slotfill.threads import set_waiting

__all__ = ["app", "configs", "ensemble", "inspect", "loop", "main", "predict", "report",
           "train", "tune", "use"]


def main() -> None:
    # before any command imports torch: threads sleep while they wait, except in training,
    # which spins and follows the free cores (`slotfill train` replaces this choice)
    set_waiting("passive")
    try:
        app()
    finally:
        # the process is ending: spare it the interpreter's last garbage collections
        # over torch's heap (about 1 s after a training run; shutdown is otherwise normal)
        gc.freeze()
