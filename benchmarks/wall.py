"""Wall-clock times a new user feels: the default `slotfill train` and the test suite.

    python benchmarks/wall.py [--skip-suite] [--set KEY=VALUE ...] [--output FILE]

Runs, each once, in a fresh subprocess from the repository root:
1. `slotfill train` with the default config on the bundled corpus (into a temporary run
   directory), as the README's quickstart does;
2. `python -m pytest -q`, the README's test command (skipped with --skip-suite).
Writes the seconds of each to a markdown table with the command, date and machine. Run
it on an otherwise idle machine: a second busy process doubles these times or worse.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import command_line, describe, load_average  # noqa: E402


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n"
                 f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-suite", action="store_true", help="time the training only")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides for the training (a smoke run; not the README's)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/wall.md")
    args = parser.parse_args()
    command, loads, rows = command_line(), [], []

    with tempfile.TemporaryDirectory() as tmp:
        seconds = timed([sys.executable, "-m", "slotfill", "train", *args.set, "--output",
                         str(Path(tmp) / "run")])
    loads.append(load_average())
    rows.append(("`slotfill train` (default config, bundled corpus, report included)"
                 + (f" with {' '.join(args.set)}" if args.set else ""),
                 f"{seconds:.0f}"))
    if not args.skip_suite:
        seconds = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
        loads.append(load_average())
        rows.append(("`pytest` (the whole suite)", f"{seconds:.0f}"))
    for name, value in rows:
        print(f"{name}: {value} s")

    lines = ["# Wall-clock times", "", f"- command: `{command}`",
             f"- date: {date.today().isoformat()}", f"- machine: {describe()}",
             f"- 1-minute load average after each measurement: {', '.join(loads)}", "",
             "| what | seconds |", "|---|---:|", *[f"| {a} | {b} |" for a, b in rows], ""]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
