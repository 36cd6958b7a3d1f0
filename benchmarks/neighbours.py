"""Training beside other work: epoch times with and without a busy neighbour.

    python benchmarks/neighbours.py [--atis DIR] [--quick] [--repeats N]
                                    [--policies slotfill torch "one thread"]

Used by benchmarks/speed.py (its "Shared machine" rows); runnable alone. Each measurement
is a child process (the OpenMP wait policy is fixed when torch starts) that trains the
BiLSTM of speed.py on ATIS for a warm-up epoch and then times `epochs` epochs, under one
policy and beside one neighbour:

    policies   slotfill: what `slotfill train` does by default (threads=0: OpenMP threads
               sleep while they wait, as many threads as cores are free)
               torch: torch's defaults (waiting threads spin, one thread per core)
               one thread: train.threads=1
    neighbours none; a one-thread busy loop; a second identical training (same policy)

Conditions alternate within each repeat, so that other load on the machine hits them
alike; medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slotfill.threads import WAIT_SETTINGS  # noqa: E402  (imports no torch)

POLICIES = {  # name: (train.threads, None: one per core; OpenMP wait: passive or default)
    "slotfill": (0, "passive"),
    "torch": (None, "default"),
    "one thread": (1, "passive"),
}
LABELS = {"slotfill": "slotfill's threads", "torch": "torch's default threads",
          "one thread": "train.threads=1"}
NEIGHBOURS = ("none", "busy loop", "second training")
BUSY_LOOP = [sys.executable, "-c", "while True: pass"]


def child(atis: Path, fraction: float, threads: int | None, epochs: int, wait: str) -> None:
    """In the child: time `epochs` epochs after a warm-up one; prints JSON."""
    if wait == "passive":
        from slotfill.threads import quiet_waiting
        quiet_waiting()  # before torch starts, as the slotfill command does
    import torch

    from benchmarks.speed import slotfill_config
    from slotfill.data.corpus import read_corpus
    from slotfill.data.vocab import Vocabs
    from slotfill.training.prepare import Prepared
    from slotfill.training.trainer import Trainer

    corpus = read_corpus(atis)
    corpus.splits["train"] = corpus["train"][: int(len(corpus["train"]) * fraction)]
    overrides = [f"train.threads={torch.get_num_threads() if threads is None else threads}"]
    cfg = slotfill_config(atis, seed=1, epochs=epochs + 1, extra=overrides)
    trainer = Trainer(cfg, Prepared(corpus, Vocabs.build(corpus["train"])))
    trainer.train_epoch()  # warm-up
    seconds = [trainer.train_epoch().seconds for _ in range(epochs)]
    print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads()}))


def start_child(atis: Path, fraction: float, policy: str, epochs: int) -> subprocess.Popen:
    threads, wait = POLICIES[policy]
    env = {k: v for k, v in os.environ.items()
           if k not in (*WAIT_SETTINGS, "OMP_NUM_THREADS")}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--atis", str(atis),
               "--fraction", str(fraction), "--epochs", str(epochs), "--wait", wait,
               "--threads", "torch" if threads is None else str(threads)]
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> list[float]:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"epoch timing child failed with status {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1])["seconds"]


def measure(atis: Path, fraction: float, policy: str, neighbour: str, epochs: int) -> float:
    """Median epoch seconds of `policy` beside `neighbour`."""
    other = None
    if neighbour == "busy loop":
        other = subprocess.Popen(BUSY_LOOP)
    elif neighbour == "second training":  # longer, so that it lasts the whole measurement
        other = start_child(atis, fraction, policy, epochs + 2)
    try:
        time.sleep(0.5 if other else 0)  # the neighbour is running before we start
        return statistics.median(finish(start_child(atis, fraction, policy, epochs)))
    finally:
        if other is not None:
            other.kill()
            other.wait()


def shared_machine(atis: Path, quick: bool, repeats: int,
                   policies: tuple[str, ...] | None = None) -> dict[tuple[str, str], float]:
    """Median epoch seconds per (policy, neighbour), conditions alternating. Quick: a
    tenth of ATIS, one timed epoch, slotfill's and torch's policies, idle and beside a
    busy loop."""
    fraction, epochs = (0.1, 1) if quick else (1.0, 3)
    policies = policies or (("slotfill", "torch") if quick else tuple(POLICIES))
    neighbours = NEIGHBOURS[:2] if quick else NEIGHBOURS
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeats):
        for neighbour in neighbours:
            for policy in policies:
                seconds = measure(atis, fraction, policy, neighbour, epochs)
                times.setdefault((policy, neighbour), []).append(seconds)
                print(f"  {policy:>10} beside {neighbour:<15} {seconds:6.2f} s per epoch",
                      flush=True)
    return {key: statistics.median(values) for key, values in times.items()}


def rows(medians: dict[tuple[str, str], float], quick: bool):
    """(figure, value, target, met) rows for speed.py's table."""
    share = "a tenth of ATIS" if quick else "ATIS"
    out = []
    for (policy, neighbour), seconds in medians.items():
        out.append((f"epoch on {share} with {LABELS[policy]}, beside {neighbour} (s)",
                    f"{seconds:.2f}", "", None))
    for policy in dict.fromkeys(p for p, _ in medians):
        idle = medians[(policy, "none")]
        for neighbour in [n for n in NEIGHBOURS[1:] if (policy, n) in medians]:
            cost = medians[(policy, neighbour)] / idle
            target = "<= 2.5x" if policy == "slotfill" else ""
            out.append((f"{LABELS[policy]}: epoch beside {neighbour} / idle epoch",
                        f"{cost:.2f}x", target, cost <= 2.5 if target else None))
    if ("torch", "none") in medians:
        kept = medians[("slotfill", "none")] / medians[("torch", "none")]
        out.append(("idle epoch with slotfill's threads / with torch's", f"{kept:.2f}x",
                    "<= 1.05x", kept <= 1.05))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--atis", type=Path,
                        default=Path(os.environ.get("SLOTFILL_ATIS_DIR",
                                                    ROOT.parent / "shared/datasets/atis")))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--policies", nargs="+", choices=tuple(POLICIES),
                        help="default: all (quick: slotfill and torch)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fraction", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--threads", default="0", help=argparse.SUPPRESS)
    parser.add_argument("--wait", default="passive", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.atis, args.fraction, None if args.threads == "torch" else int(args.threads),
              args.epochs, args.wait)
        return
    medians = shared_machine(args.atis, args.quick, args.repeats, args.policies)
    for figure, value, target, _ in rows(medians, args.quick):
        print(f"{figure:75s} {value:>8s}  {target}")


if __name__ == "__main__":
    main()
