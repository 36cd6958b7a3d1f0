"""Run directories: creating a new one without clobbering, finding trained models."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from slotfill.errors import RunDirError

RUNS_DIR = Path("runs")
RUN_MARKERS = ("config.yaml", "history.csv", "last.pt")  # files only a run directory has


def create_run_dir(name: str, output: Path | None = None, force: bool = False) -> Path:
    """A new, empty run directory: `output`, or runs/<name>-<timestamp>/."""
    if output is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path, n = RUNS_DIR / f"{name}-{stamp}", 1
        while path.exists():
            n += 1
            path = RUNS_DIR / f"{name}-{stamp}-{n}"
        path.mkdir(parents=True)
        return path
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise RunDirError(f"--output {output} is a file", "choose a directory path")
    if output.is_dir() and any(output.iterdir()):
        if not force:
            raise RunDirError(f"Run directory {output} exists and is not empty",
                              "choose another --output, or pass --force to replace it")
        if not any((output / marker).exists() for marker in RUN_MARKERS):
            raise RunDirError(f"Refusing to replace {output}: it is not a slotfill run "
                              "directory", "choose another --output")
        shutil.rmtree(output)
    output.mkdir(parents=True, exist_ok=True)
    return output


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


def read_status(run_dir: Path) -> dict:
    """status.json of a run ({} when missing or unreadable); train.write_status writes it."""
    import json

    try:
        return json.loads((Path(run_dir) / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def summarize_run(path: Path) -> dict:
    """What `slotfill compare` shows of one run directory (any stage of a run)."""
    import csv
    import json

    from slotfill.config import parse_yaml

    path = Path(path)
    if not (path / "config.yaml").is_file():
        raise RunDirError(f"{path} is not a run directory", "expected a directory written "
                          "by `slotfill train` (with config.yaml)")
    config = parse_yaml((path / "config.yaml").read_text(encoding="utf-8")) or {}
    status = read_status(path)
    summary: dict = {"run": str(path), "model": config.get("model", {}),
                     "state": status.get("state", "unknown")}
    if summary["state"] == "running" and not _alive(status):
        summary["state"] = "stopped"  # killed without a chance to say so

    if (path / "history.csv").is_file():
        with open(path / "history.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        summary["epochs"] = len(rows)
        summary["seconds"] = sum(float(r["seconds"]) for r in rows)
    if (path / "metrics.json").is_file():
        metrics = json.loads((path / "metrics.json").read_text())
        summary["best_epoch"] = metrics["best_epoch"]
        summary["dev"], summary["test"] = metrics["dev"], metrics.get("test")
    return summary


def _alive(status: dict) -> bool:
    """Whether the process that wrote a `running` status still runs (on this machine;
    elsewhere we cannot tell, so assume it does)."""
    import os
    import socket

    if status.get("host") != socket.gethostname() or "pid" not in status:
        return True
    try:
        os.kill(status["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
