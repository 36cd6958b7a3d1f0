"""What a benchmark's results file says about its run: the machine and the command."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from pathlib import Path


def describe() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} CPUs visible, {platform.system()} {platform.machine()},"
            f" Python {platform.python_version()}")


ROOT = Path(__file__).resolve().parents[1]


def shown_path(path: str | Path) -> str:
    """A path as results files show it: relative to the repository root (`../shared/...`),
    never one machine's absolute path."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    return os.path.relpath(path.resolve(), ROOT)


def command_line() -> str:
    """The command that ran this benchmark, as typed from the repository root (absolute
    paths among its arguments shown relative to the root)."""
    args = [shown_path(a) if a.startswith("/") else a for a in sys.argv[1:]]
    return shlex.join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *args])


def load_average() -> str:
    """The 1-minute load average: how busy the machine was besides the benchmark (on an
    idle 2-core machine it stays near what the benchmark itself adds)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "unknown"
