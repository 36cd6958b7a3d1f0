"""Distributed benchmark: the same training with 1 and with N worker processes.

    python benchmarks/distributed.py [--data DIR] [--nproc 2] [--epochs 10]
                                     [--output benchmarks/results/distributed.md]

Runs `slotfill train configs/bilstm.yaml --nproc K` as a user would (K = 1 and N, one
after the other, fixed epochs, no early stopping) and reports training throughput
(tokens per second of training time, dev evaluation excluded), wall time, and the final
dev and test F1 of each. With N workers every optimiser step sees N batches, so the same
epochs make N times fewer, larger steps: the F1 columns show what that costs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import command_line, describe, shown_path  # noqa: E402
from slotfill.training.rundir import RunDir  # noqa: E402

DEFAULT_ATIS = Path(os.environ.get("SLOTFILL_ATIS_DIR", ROOT.parent / "shared/datasets/atis"))


def train(data: Path, nproc: int, epochs: int, run_dir: Path) -> dict:
    command = [sys.executable, "-m", "slotfill", "train", str(ROOT / "configs/bilstm.yaml"),
               f"data.path={data}", f"train.epochs={epochs}", "train.patience=0",
               "train.device=cpu", "--output", str(run_dir)]
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    run = RunDir(run_dir).summary()
    return {"nproc": nproc, "wall": wall, "epoch_seconds": run["seconds"] / run["epochs"],
            "dev_f1": run["dev"]["f1"], "test_f1": run["test"]["f1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_ATIS)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--output", type=Path,
                        default=ROOT / "benchmarks/results/distributed.md")
    args = parser.parse_args()
    from slotfill.data.corpus import read_corpus
    tokens = sum(len(e.tokens) for e in read_corpus(args.data, splits=("train",))["train"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for nproc in (1, args.nproc):
            result = train(args.data, nproc, args.epochs, Path(tmp) / f"run{nproc}")
            rows.append(result)
            print(f"{nproc} process(es): {result['epoch_seconds']:.2f} s per epoch "
                  f"(training + dev), {result['wall']:.0f} s wall, test F1 "
                  f"{100 * result['test_f1']:.2f}", flush=True)
    command = command_line()
    import torch

    lines = ["# Distributed training benchmark", "",
             f"- command: `{command}`", f"- date: {date.today().isoformat()}",
             f"- machine: {describe()}; torch {torch.__version__}, gloo backend on CPU",
             f"- `configs/bilstm.yaml` on `{shown_path(args.data)}` ({tokens:,} training tokens), "
             f"{args.epochs} epochs, no early stopping; one process uses torch's default "
             f"threads, N processes share the cores (OMP_NUM_THREADS = cores / N)", "",
             "| processes | seconds per epoch (training + dev) | training tokens/s | "
             "wall time (s) | dev F1 | test F1 |", "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['nproc']} | {r['epoch_seconds']:.2f} | "
                     f"{tokens / r['epoch_seconds']:,.0f} | {r['wall']:.0f} | "
                     f"{100 * r['dev_f1']:.2f} | {100 * r['test_f1']:.2f} |")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
