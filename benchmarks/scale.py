"""Big inputs: streaming predict on a million lines, and a corpus 100 times ATIS.

    python benchmarks/scale.py [--atis DIR] [--quick] [--output FILE]

Each measurement is a fresh process, one at a time; peak memory is the largest sum of the
resident sets of the process and its children seen by polling /proc every 20 ms (with
one process, the kernel's own peak for it).
1. `slotfill predict --file F --output O` (JSON lines) with a BiLSTM trained on ATIS
   (runs/scale/bilstm, trained once, 3 epochs: throughput does not depend on its
   accuracy), F = ATIS test's utterances repeated to 100,000 and to 1,000,000 lines; then
   with `--workers 2` on the million lines.
2. A plain loop that calls the model once per line (`slotfill.load(RUN)` and
   `tagger.predict([line])`) over the first 20,000 of those lines: the lines/s a user gets
   without streaming batches.
3. `slotfill data check` and one epoch of `slotfill train bilstm` on ATIS and on ATIS
   train repeated 100 times (447,800 utterances; valid and test as they are); utterances/s
   of the epoch from history.csv's seconds.
`--quick` shrinks every input (10,000 and 20,000 lines, ATIS x 3, 1,000 loop lines) to
check the script. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import train_once  # noqa: E402
from benchmarks.machine import command_line, describe, load_average, shown_path  # noqa: E402

ATIS = ROOT.parent / "shared" / "datasets" / "atis"
LOOP = """
import sys, time
import slotfill
tagger = slotfill.load(sys.argv[1])
lines = open(sys.argv[2], encoding="utf-8").read().splitlines()[:int(sys.argv[3])]
started = time.perf_counter()
for line in lines:
    tagger.predict([line])
print(len(lines) / (time.perf_counter() - started))
"""


def tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and its descendants now."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))  # fields[1]: the ppid
        rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # fields[21]: rss
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


class Measured(NamedTuple):
    seconds: float
    peak: float  # MiB
    stdout: str
    samples: list[tuple[float, int]]  # (seconds since the start, resident bytes)

    def peak_until(self, share: float) -> float:
        """The peak MiB over the first `share` of the run's time."""
        return max(b for t, b in self.samples if t <= share * self.seconds) / 2**20


def measure(command: list[str], **kwargs) -> Measured:
    """A command run to its end, with its resident memory polled; exits on failure."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, **kwargs)
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            samples.append((time.perf_counter() - started, tree_rss(process.pid)))
            done.wait(0.02)
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    poller.join()
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({process.returncode}):\n{stdout[-2000:]}\n"
                 f"{stderr[-3000:]}")
    return Measured(seconds, max(b for _, b in samples) / 2**20, stdout, samples)


def repeat_lines(source: Path, target: Path, count: int) -> None:
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    with open(target, "w", encoding="utf-8") as f:
        for i in range(count):
            f.write(lines[i % len(lines)])


def repeated_corpus(atis: Path, target: Path, times: int) -> Path:
    """ATIS with train repeated `times` times."""
    for split in ("train", "valid", "test"):
        (target / split).mkdir(parents=True, exist_ok=True)
        for name in ("seq.in", "seq.out", "label"):
            text = (atis / split / name).read_text(encoding="utf-8")
            (target / split / name).write_text(text * (times if split == "train" else 1),
                                               encoding="utf-8")
    return target


def slotfill(*args: str) -> list[str]:
    return [sys.executable, "-m", "slotfill", *args]


def epoch(corpus: Path, out: Path) -> tuple[float, float, float]:
    """(utterances/s of one training epoch, its seconds, peak MiB of the whole run)."""
    peak = measure(slotfill("train", "bilstm", f"data.path={corpus}", "train.epochs=1",
                            "train.report=false", "--output", str(out))).peak
    with open(out / "history.csv") as f:
        seconds = float(next(csv.DictReader(f))["seconds"])
    with open(corpus / "train" / "seq.in", encoding="utf-8") as f:
        utterances = sum(1 for _ in f)
    return utterances / seconds, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--atis", type=Path, default=ATIS)
    parser.add_argument("--quick", action="store_true", help="small inputs, to check")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "scale")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/scale.md")
    args = parser.parse_args()
    if not (args.atis / "test" / "seq.in").is_file():
        sys.exit(f"ATIS not found at {args.atis} (--atis DIR)")
    small, big, loop_lines, times = ((10_000, 20_000, 1_000, 3) if args.quick
                                     else (100_000, 1_000_000, 20_000, 100))
    run = args.runs_dir / ("bilstm-quick" if args.quick else "bilstm")

    def bilstm():
        from slotfill.config import load_config
        return load_config("bilstm", [f"data.path={args.atis}", "train.report=false",
                                      f"train.epochs={1 if args.quick else 3}"])
    train_once(run, bilstm)
    rows: list[tuple[str, str, str, str]] = []

    def row(name: str, value: str, target: str = "", met: bool | None = None) -> None:
        rows.append((name, value, target, "" if met is None else ("yes" if met else "no")))
        print(f"{name}: {value}" + (f" (target {target})" if target else ""), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rates, runs = {}, {}
        for n in (small, big):
            lines = tmp / f"lines-{n}.txt"
            repeat_lines(args.atis / "test" / "seq.in", lines, n)
            for workers in ((1, 2) if n == big else (1,)):
                runs[n, workers] = measured = measure(slotfill(
                    "predict", "--model", str(run), "--file", str(lines), "--format", "jsonl",
                    "--output", str(tmp / "out.jsonl"), "--workers", str(workers)))
                with open(tmp / "out.jsonl", encoding="utf-8") as f:
                    assert sum(1 for _ in f) == n, "one record per input line"
                rates[n, workers] = n / measured.seconds
        loop_rate = float(measure([sys.executable, "-c", LOOP, str(run),
                                   str(tmp / f"lines-{big}.txt"), str(loop_lines)]
                                  ).stdout.strip().splitlines()[-1])
        small_peak, whole = runs[small, 1].peak, runs[big, 1]
        row(f"`predict --file`, {small:,} lines: peak RSS (MiB)", f"{small_peak:.0f}",
            "< 400", small_peak < 400)
        row(f"`predict --file`, {big:,} lines: peak RSS (MiB)", f"{whole.peak:.0f}",
            "< 400", whole.peak < 400)
        # the same run's memory after a tenth of its lines (its time) and at its end
        tenth = whole.peak_until(0.1)
        row(f"`predict --file`, {big:,} lines: peak RSS over its first tenth of the time "
            "-> over the whole run (MiB)", f"{tenth:.0f} -> {whole.peak:.0f} "
            f"({100 * (whole.peak / tenth - 1):+.1f}%)", "no rise (< 5%)",
            whole.peak < 1.05 * tenth)
        row(f"`predict --file`, {small:,} lines: lines/s (whole command)",
            f"{rates[small, 1]:,.0f}")
        row(f"`predict --file`, {big:,} lines: lines/s (whole command)",
            f"{rates[big, 1]:,.0f}")
        row(f"plain loop, one model call per line ({loop_lines:,} lines): lines/s",
            f"{loop_rate:,.0f}")
        row(f"`predict --file` ({big:,} lines) / plain loop", f"{rates[big, 1] / loop_rate:.1f}x",
            ">= 3x", rates[big, 1] >= 3 * loop_rate)
        row(f"`predict --file --workers 2`, {big:,} lines: lines/s; peak RSS of all "
            "processes (MiB)", f"{rates[big, 2]:,.0f}; {runs[big, 2].peak:.0f}")
        row("`--workers 2` / one process", f"{rates[big, 2] / rates[big, 1]:.2f}x")

        corpora = {"ATIS": args.atis, f"ATIS train x {times}":
                   repeated_corpus(args.atis, tmp / f"atis-x{times}", times)}
        speeds = {}
        for name, corpus in corpora.items():
            checked = measure(slotfill("data", "check", str(corpus)))
            row(f"`data check`, {name}: seconds; peak RSS (MiB)",
                f"{checked.seconds:.1f}; {checked.peak:.0f}")
        for name, corpus in corpora.items():
            rate, seconds, peak = epoch(corpus, tmp / f"run-{len(speeds)}")
            speeds[name] = rate
            last = len(speeds) == len(corpora)
            row(f"one `bilstm` epoch, {name}: utterances/s (epoch s); peak RSS of the run (MiB)",
                f"{rate:,.0f} ({seconds:.1f}); {peak:.0f}",
                "peak < 1536 MiB" if last else "", peak < 1536 if last else None)
        first, scaled = speeds.values()
        row(f"epoch utterances/s, ATIS train x {times} / ATIS", f"{scaled / first:.2f}x",
            ">= 1.0x (within 5% noise)", scaled >= 0.95 * first)

    header = ["# Big inputs", "",
              f"- command: `{command_line()}`",
              f"- date: {date.today().isoformat()}",
              f"- machine: {describe()}; 1-minute load average after the run "
              f"{load_average()}",
              f"- model: `bilstm` on ATIS ({shown_path(run)}), corpus {shown_path(args.atis)}",
              "- each figure one fresh process, one at a time; peak RSS polled from /proc "
              "every 20 ms over the process and its children", ""]
    table = ["| measure | value | target | met |", "|---|---|---|---|"]
    table += [f"| {' | '.join(r)} |" for r in rows]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(header + table) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
