"""Run directories: the one owner of the files a training run writes, and of reading them.

    config.yaml    the resolved config
    status.json    running | finished | failed | interrupted | pruned (by `slotfill tune`),
                   with reason, process, host
    best.pt        checkpoint with the best dev F1 so far
    last.pt        end of the latest epoch, or where an interrupted one stopped
    history.csv    one row per epoch (events.EpochRecord)
    metrics.json   best_epoch, epochs, and the dev and test scores of best.pt (an
                   ensemble's directory, from `slotfill ensemble`, lists its members)
    metrics.md     the same as tables
    report.html, curves.svg, tensorboard/   the run report, its curves, event files

A new run directory is never put over an existing one unless the caller forces it, and
only over something that is itself a run directory.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from slotfill.atomic import atomic_write
from slotfill.errors import RunDirError, WriteError

RUNS_DIR = Path("runs")
_MARKERS = ("config.yaml", "history.csv", "last.pt")  # files only a run directory has


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ------------------------------------------------------------ where things are

    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def best(self) -> Path:
        return self.path / "best.pt"

    @property
    def last(self) -> Path:
        return self.path / "last.pt"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    @property
    def curves(self) -> Path:
        return self.path / "curves.svg"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    # ------------------------------------------------------------ creating, opening

    @classmethod
    def create(cls, name: str, output: Path | None = None, force: bool = False) -> RunDir:
        """A new, empty run directory: `output`, or runs/<name>-<timestamp>/."""
        if output is None:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            path, n = RUNS_DIR / f"{name}-{stamp}", 1
            while path.exists():
                n += 1
                path = RUNS_DIR / f"{name}-{stamp}-{n}"
            _make_dir(path, exist_ok=False)
            return cls(path)
        check_output(output, force)
        output = Path(output)
        if output.is_dir() and any(output.iterdir()):
            shutil.rmtree(output)  # check_output allowed it: --force over a run directory
        _make_dir(output, exist_ok=True)
        return cls(output)

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory (any stage of a run), or a RunDirError."""
        run = cls(path)
        if not run.path.is_dir():
            raise RunDirError(f"Run directory not found: {run.path}",
                              "pass a directory written by `slotfill train` "
                              "(`slotfill runs` lists them)")
        if not run.config_file.is_file():
            raise RunDirError(f"{run.path} is not a run directory",
                              "expected a directory written by `slotfill train` "
                              "(with config.yaml)")
        return run

    @staticmethod
    def is_run(path: Path) -> bool:
        return any((Path(path) / marker).exists() for marker in _MARKERS)

    # ------------------------------------------------------------ files

    def write_config(self, config_yaml: str) -> None:
        atomic_write(self.config_file, lambda f: f.write(config_yaml.encode()))

    def read_config(self) -> dict:
        """The resolved config as a plain mapping ({} when unreadable)."""
        from slotfill.config import parse_yaml
        try:
            return parse_yaml(self.config_file.read_text(encoding="utf-8")) or {}
        except (OSError, ValueError):
            return {}

    def write_status(self, state: str, reason: str = "", **extra: Any) -> None:
        """status.json; `extra` adds fields (`unwritten`: the file a failed run could not
        write, which lets `resume` start over when not even last.pt was written)."""
        payload = {"state": state, "reason": reason, "pid": os.getpid(),
                   "host": socket.gethostname(),
                   "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   **extra}
        _write_json(self.path / "status.json", payload)

    def read_status(self) -> dict:
        """status.json ({} when missing or unreadable)."""
        return _read_json(self.path / "status.json") or {}

    def state(self) -> str:
        """The status's state; a `running` run whose process is gone is `stopped`."""
        status = self.read_status()
        state = status.get("state", "unknown")
        return "stopped" if state == "running" and not _alive(status) else state

    def write_history(self, records: Sequence[Any]) -> None:
        """history.csv from epoch records (dataclasses, one row each)."""
        out = io.StringIO()
        if records:
            writer = csv.DictWriter(out, fieldnames=[f.name for f in fields(records[0])],
                                    lineterminator="\n")
            writer.writeheader()
            writer.writerows(asdict(r) for r in records)
        atomic_write(self.path / "history.csv", lambda f: f.write(out.getvalue().encode()))

    def read_history(self) -> list[dict]:
        """history.csv as rows of numbers (epoch an int, best a bool); [] when absent."""
        try:
            with open(self.path / "history.csv", newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError:
            return []
        return [{k: (int(v) if k == "epoch" else v == "True" if k == "best" else float(v))
                 for k, v in row.items()} for row in rows]

    def write_metrics(self, best_epoch: int | None, epochs: int, dev: dict,
                      test: dict | None, members: list[str] | None = None) -> None:
        """Final scores; an ensemble (no epochs of its own) names its `members`."""
        from slotfill.analysis.tables import metrics_markdown

        columns = {"dev": dev, **({"test": test} if test is not None else {})}
        extra = {"members": members} if members else {}
        _write_json(self.path / "metrics.json",
                    {"best_epoch": best_epoch, "epochs": epochs, **extra, **columns})
        heading = (f"Scores of the ensemble of {len(members)} models" if members else
                   f"Scores of best.pt (epoch {best_epoch} of {epochs})")
        atomic_write(self.path / "metrics.md",
                     lambda f: f.write(metrics_markdown(columns, heading).encode()))

    def read_metrics(self) -> dict | None:
        return _read_json(self.path / "metrics.json")

    def summary(self) -> dict:
        """What `slotfill runs` and `slotfill compare` show of a run, at any stage."""
        status, history = self.read_status(), self.read_history()
        config = self.read_config()
        started = datetime.fromtimestamp(self.config_file.stat().st_mtime, timezone.utc)
        summary: dict = {"run": str(self.path), "model": config.get("model", {}),
                         "data": config.get("data", {}).get("path"), "state": self.state(),
                         "reason": status.get("reason", ""),
                         "started": started.isoformat(timespec="seconds"),
                         "epochs": len(history),
                         "seconds": sum(row["seconds"] for row in history)}
        if history:  # an unfinished run still has a best epoch so far
            best = max(history, key=lambda row: row["dev_f1"])
            summary["best_epoch"], summary["dev"] = best["epoch"], {"f1": best["dev_f1"]}
        metrics = self.read_metrics()
        if metrics is not None:
            summary["best_epoch"] = metrics["best_epoch"]
            summary["dev"], summary["test"] = metrics["dev"], metrics.get("test")
            if metrics.get("members"):
                summary["members"] = metrics["members"]
        return summary


def check_output(output: Path, force: bool) -> None:
    """Refuse an --output that a new run may not use, before any work starts."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise RunDirError(f"--output {output} is a file", "choose a directory path")
    if output.is_dir() and any(output.iterdir()):
        if not force:
            raise RunDirError(f"Run directory {output} exists and is not empty",
                              "choose another --output, or pass --force to replace it")
        if not RunDir.is_run(output):
            raise RunDirError(f"Refusing to replace {output}: it is not a slotfill run "
                              "directory", "choose another --output")


# A checkpoint's size in copies of the weights: best.pt holds the weights, last.pt the
# weights and the optimiser's state (Adam's two moments), plus the averaged weights with
# train.ema; each is written through a temporary copy before the rename. The margin
# covers the files' own overhead (a tiny BiLSTM's last.pt is 3.8 copies) and the rest
# of the directory (history, metrics, report).
_BEST, _LAST, _LAST_EMA, _MARGIN = 1.0, 3.0, 4.0, 1.3


def space_warning(run: RunDir, weight_bytes: int, averaged: bool) -> str | None:
    """A warning when the disk that holds the run looks too small for its checkpoints
    (best.pt, last.pt and the temporary copy last.pt is written through), or None."""
    last = _LAST_EMA if averaged else _LAST
    need = _MARGIN * weight_bytes * (_BEST + 2 * last)
    need -= sum(p.stat().st_size for p in (run.best, run.last) if p.is_file())  # resume
    try:
        free = shutil.disk_usage(run.path).free
    except OSError:
        return None
    if free >= need:
        return None
    return (f"only {_size(free)} free on the disk that holds {run.path}; its checkpoints "
            f"need about {_size(need)} (best.pt, last.pt and the temporary copy each is "
            "written through). If the disk fills, the run stops with the last checkpoint "
            "intact, and `slotfill train --resume` continues it once there is space.")


def _size(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} KB"


def _make_dir(path: Path, exist_ok: bool) -> None:
    try:
        path.mkdir(parents=True, exist_ok=exist_ok)
    except FileExistsError:
        raise
    except OSError as exc:
        raise WriteError(path, exc) from None


def find_runs(runs_dir: Path = RUNS_DIR) -> list[RunDir]:
    """The run directories directly under runs_dir, newest first."""
    if not runs_dir.is_dir():
        return []
    runs = [RunDir(p) for p in runs_dir.iterdir() if (p / "config.yaml").is_file()]
    return sorted(runs, key=lambda r: r.config_file.stat().st_mtime, reverse=True)


def latest_model(runs_dir: Path = RUNS_DIR) -> Path | None:
    """The newest best.pt under runs_dir/*/, or None."""
    candidates = [p for p in runs_dir.glob("*/best.pt") if p.is_file()]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def resolve_model(arg: str | Path | None) -> Path:
    """The --model argument: a checkpoint file, a run directory (its best.pt), or None for
    the newest run under ./runs/."""
    if arg is None:
        found = latest_model()
        if found is None:
            raise RunDirError(f"No trained model found under ./{RUNS_DIR}/",
                              "run `slotfill train` first, or pass --model CHECKPOINT|RUN_DIR")
        return found
    path = Path(arg)
    if path.is_dir():
        if not (path / "best.pt").is_file():
            raise RunDirError(f"No best.pt in {path}",
                              "pass a run directory whose training finished at least one "
                              "epoch, or a checkpoint file")
        return path / "best.pt"
    if not path.exists():
        raise RunDirError(f"Model not found: {path}",
                          "pass a checkpoint file (best.pt) or a run directory")
    return path


def _write_json(path: Path, payload: dict) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(payload, indent=2) + "\n").encode()))


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _alive(status: dict) -> bool:
    """Whether the process that wrote a `running` status still runs (on this machine;
    elsewhere we cannot tell, so assume it does)."""
    if status.get("host") != socket.gethostname() or "pid" not in status:
        return True
    try:
        os.kill(status["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
