"""How long the run report takes to write, phase by phase, against `slotfill eval`.

    python benchmarks/report_speed.py --model RUN_DIR [--split test] [--repeats 3]
        [--threads N] [--output benchmarks/results/report.md]

In one process (imports done, the median of --repeats): scoring the split without and
with confidences, the error analysis, the curves (inline and as curves.svg), the other
charts, the page. Then as a user meets them, each a fresh process: `slotfill eval
--json`, `slotfill report`, and the report as the end of `slotfill train` writes it
(imports included: torch and the evaluation already loaded, the report's modules not).
`--threads N` runs torch on N threads throughout (OMP_NUM_THREADS for the processes; one
thread measures the work rather than a busy machine's scheduling).
Writes the table with the machine, its load and the command.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import command_line, describe, shown_path  # noqa: E402


def timed(function, repeats: int) -> tuple[float, object]:
    """Median seconds of `repeats` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def in_process(checkpoint: Path, run_dir: Path, split: str, repeats: int) -> dict[str, float]:
    from slotfill.analysis import charts, report
    from slotfill.analysis.errors import analyse
    from slotfill.analysis.evaluate import evaluate_checkpoint
    from slotfill.analysis.report_html import render
    from slotfill.training.rundir import RunDir

    figures = {}
    figures["eval (scores only)"], _ = timed(
        lambda: evaluate_checkpoint(checkpoint, split=split), repeats)
    figures["eval with confidences"], result = timed(
        lambda: evaluate_checkpoint(checkpoint, split=split, confidence=True), repeats)
    figures["error analysis"], analysis = timed(
        lambda: analyse(result.examples, result.predictions,
                        frozenset(result.vocabs.words.itos)), repeats)
    run = RunDir(run_dir)
    record = report.RunRecord(run.path.name, run.read_config(), run.read_history(),
                              run.summary())

    def curves():
        drawing = charts.curves(record.history, record.summary.get("best_epoch"))
        return drawing.inline("curves"), drawing.document("curves")
    figures["curves (inline and file)"], (curves_svg, _) = timed(curves, repeats)
    figures["confusion and calibration charts"], drawn = timed(
        lambda: report._analysis_charts(analysis), repeats)
    inputs = report.ReportInputs(result, analysis, record, {"curves": curves_svg, **drawn})
    figures["page (HTML)"], _ = timed(lambda: render(inputs), repeats)
    figures["report in process (sum of the above but the first)"] = sum(
        v for k, v in figures.items() if k != "eval (scores only)")
    return figures


def as_process(args: list[str], threads: int | None) -> float:
    started = time.perf_counter()
    _python(["-m", "slotfill", *args], threads)
    return time.perf_counter() - started


# write_run_report as the end of `slotfill train` calls it: torch and the evaluation are
# loaded by then, the report's own modules (charts and all) are not
AT_THE_END = """import sys, time
from pathlib import Path
import slotfill.analysis.evaluate
from slotfill.training.loggers import write_run_report
started = time.perf_counter()
write_run_report(Path(sys.argv[1]) / "best.pt", split=sys.argv[2], output=Path(sys.argv[3]))
print(time.perf_counter() - started)
"""


def _python(args: list[str], threads: int | None) -> str:
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    return subprocess.run([sys.executable, *args], check=True, capture_output=True,
                          text=True, env=env).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="run directory")
    parser.add_argument("--split", default="test")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own choice)")
    parser.add_argument("--output", default=str(ROOT / "benchmarks/results/report.md"))
    args = parser.parse_args()
    run_dir = Path(args.model)
    checkpoint = run_dir / "best.pt"
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    figures = in_process(checkpoint, run_dir, args.split, args.repeats)
    with tempfile.TemporaryDirectory() as scratch:
        figures["`slotfill eval --json` (fresh process)"] = as_process(
            ["eval", "--model", str(run_dir), "--split", args.split, "--json"], args.threads)
        figures["`slotfill report` (fresh process)"] = as_process(
            ["report", "--model", str(run_dir), "--split", args.split,
             "--output", str(Path(scratch) / "report.html")], args.threads)
        figures["the report at the end of `slotfill train` (first in its process)"] = float(
            _python(["-c", AT_THE_END, str(run_dir), args.split,
                     str(Path(scratch) / "end.html")], args.threads))
        size = (Path(scratch) / "report.html").stat().st_size
    lines = ["# Run report: time to write", "",
             f"- command: `{command_line()}`",
             f"- date: {date.today().isoformat()}",
             f"- machine: {describe()}; load average {load:.1f} when it started",
             f"- torch {torch.__version__}, threads: {torch.get_num_threads()}",
             f"- model: `{shown_path(checkpoint)}`, split {args.split}; the report: "
             f"{size / 1024:,.0f} KiB",
             f"- in process: median of {args.repeats}", "",
             "| phase | seconds |", "|---|---:|"]
    lines += [f"| {name} | {value:.3f} |" for name, value in figures.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
