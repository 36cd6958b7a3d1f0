"""Starting training workers on this machine (`slotfill train --nproc N`) and telling the
user what stopped them. Imports torch only when launching, so the CLI can wrap its train
command with `reporting_failures` at import time.

Before any worker starts, `plan_devices` checks that each process has a GPU of its own
when training on CUDA. Each worker that fails writes its error to a reports folder
(`reporting_failures`); the launcher picks the failure that caused the others
(`first_failure`) and raises it as one WorkerFailed: the user reads one message, not a
traceback per rank, and torchrun's own log lines stay quiet.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from slotfill.errors import ConfigError, SlotfillError
from slotfill.threads import unset_own_waiting, usable_cores

# where a worker started by `launch` writes what stopped it (a folder of rank-N.json)
REPORTS_ENV = "SLOTFILL_WORKER_REPORTS"


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def plan_devices(device: str, nproc: int, by_hand: bool = False) -> str:
    """The device type ("cpu" or "cuda") that `nproc` workers on this machine train on
    with train.device=`device`, one GPU each; a ConfigError (exit 2) where the GPUs are
    too few. With `auto`, fewer GPUs than processes is an error too, not a quiet fall-back
    to CPU processes: that would leave the GPUs idle and train many times slower than
    the user expects. `by_hand`: the workers came from the user's own torchrun."""
    gpus = gpu_count()
    if device == "cpu" or (device == "auto" and gpus == 0):
        return "cpu"
    if gpus >= nproc:
        return "cuda"
    if gpus == 0:
        raise ConfigError("train.device is cuda, but no CUDA device is available",
                          "use train.device=cpu or train.device=auto")
    have = f"this machine has {gpus} GPU{'s' if gpus > 1 else ''}"
    if by_hand:
        raise ConfigError(f"{nproc} processes on this machine need {nproc} GPUs to train on "
                          f"CUDA; {have}", f"start at most {gpus} per machine (torchrun "
                          "--nproc-per-node), or use train.device=cpu")
    raise ConfigError(f"--nproc {nproc} needs {nproc} GPUs with train.device={device}; {have}",
                      f"use --nproc {gpus} to train on the GPU{'s' if gpus > 1 else ''} (one "
                      f"process each), or train.device=cpu for {nproc} CPU processes")


# ------------------------------------------------------------------ launching workers

class WorkerFailed(SlotfillError):
    """A worker process stopped with an error; `rank` says which. `user_error`: a
    SlotfillError in the worker (its detail says what to fix); else a bug (`trace` holds
    its traceback) or a process killed from outside."""

    def __init__(self, rank: int, title: str, detail: str, exit_code: int,
                 trace: str = "", user_error: bool = False) -> None:
        super().__init__(title, detail)
        self.rank, self.exit_code, self.trace, self.user_error = \
            rank, exit_code, trace, user_error


def reporting_failures(*exits: type[BaseException]):
    """Decorates a worker's command: under `launch`, an exception is written to the
    launcher's reports folder and the worker exits quietly with its status; the launcher
    prints one message for all workers. `exits`: exceptions that end a command as
    intended (the CLI's exit with a status) and pass through. Outside `launch` (one
    process, or torchrun started by hand) nothing changes."""
    def decorate(command):
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            folder = os.environ.get(REPORTS_ENV)
            if not folder or "RANK" not in os.environ:
                return command(*args, **kwargs)
            try:
                return command(*args, **kwargs)
            except exits:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure goes to the launcher
                report_failure(Path(folder), int(os.environ["RANK"]), exc)
        return wrapper
    return decorate


def report_failure(folder: Path, rank: int, exc: Exception):
    """Writes what stopped this worker for the launcher, then exits with its status."""
    user_error = isinstance(exc, SlotfillError)
    report = {"rank": rank, "time": time.time(),
              "title": exc.title if user_error else one_line(exc),
              "detail": exc.detail if user_error else "",
              "exit_code": exc.exit_code if user_error else 1,
              "traceback": "" if user_error else traceback.format_exc()}
    (folder / f"rank-{rank}.json").write_text(json.dumps(report), encoding="utf-8")
    sys.exit(report["exit_code"])


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def launch(nproc: int, argv: list[str]) -> int:
    """Run `slotfill <argv>` in nproc worker processes on this machine via torchrun;
    returns their exit code, or raises WorkerFailed with the error of the worker that
    failed first (the others mostly fail because it did)."""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    unset_own_waiting()  # each worker chooses as `slotfill train` does
    # share the cores among the workers (torchrun would otherwise warn and pick 1)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, usable_cores() // nproc)))
    # torchrun's own log lines would repeat each worker's failure in its words
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    args = ["--standalone", f"--nproc-per-node={nproc}", "--monitor-interval=0.1",
            "-m", "slotfill", *argv]
    with tempfile.TemporaryDirectory(prefix="slotfill-workers-") as reports:
        os.environ[REPORTS_ENV] = reports
        try:
            torchrun.main(args)
        except SystemExit as exc:  # torchrun exits through sys.exit
            return int(exc.code or 0)
        except SignalException as exc:  # Ctrl-C or kill: the workers saved and stopped
            return 128 + int(exc.sigval)
        except ChildFailedError as exc:
            raise first_failure(Path(reports), exc.failures) from None
        finally:
            del os.environ[REPORTS_ENV]
    return 0


def first_failure(reports: Path, failures: dict) -> WorkerFailed:
    """The failure that caused the others: a worker's user error (SlotfillError) first;
    else a worker killed by a signal before it could report (its peers then fail in
    their collectives); else the earliest report; else the earliest exit."""
    written = []
    for path in reports.glob("rank-*.json"):
        try:
            written.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    user_errors = [r for r in written if not r["traceback"]]
    reported = {r["rank"] for r in written}
    killed = [(rank, f) for rank, f in failures.items()
              if f.exitcode < 0 and rank not in reported]
    if user_errors or (written and not killed):
        first = min(user_errors or written, key=lambda r: r["time"])
        return WorkerFailed(first["rank"], first["title"], first["detail"],
                            first["exit_code"], first["traceback"], not first["traceback"])
    rank, failure = min(killed or failures.items(), key=lambda item: item[1].timestamp)
    if failure.exitcode < 0:
        name = signal.Signals(-failure.exitcode).name
        detail = ("the system may have run out of memory (see `dmesg`); fewer processes, "
                  "a smaller train.batch_size or a smaller model need less"
                  if name == "SIGKILL" else "something outside slotfill stopped it")
        return WorkerFailed(rank, f"Killed by {name}", detail,
                            128 - failure.exitcode)
    return WorkerFailed(rank, f"Exited with status {failure.exitcode}",
                        "it left no error message", failure.exitcode or 1)
