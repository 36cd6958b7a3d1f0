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


def command_line() -> str:
    """The command that ran this benchmark, as typed from the repository root."""
    return shlex.join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])
