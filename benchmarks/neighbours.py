"""Training beside other work, and what each thread and wait setting costs: epoch times
idle and beside a busy neighbour.

    python benchmarks/neighbours.py [--atis DIR] [--quick] [--repeats N]
                                    [--policies slotfill torch ...]

Used by benchmarks/speed.py (its thread-policy rows); runnable alone. Each measurement
is a child process (the OpenMP wait policy is fixed when torch starts) that trains the
BiLSTM recipe of benchmarks/reference.py on ATIS for three epochs under one policy and
beside one neighbour, and reports each epoch's seconds and its own wall time:

    policies   slotfill: what `slotfill train` does by default (train.threads=0: threads
               spin while they wait and follow the free cores; slotfill/threads.py)
               passive governed: train.threads=0 with passive waiting (the last default)
               torch: torch's defaults (OpenMP's waiting: spin a while, then sleep; one
               thread per core)
               active 2, passive 2, spin 10000 2: two fixed threads with
               OMP_WAIT_POLICY=active, =passive or GOMP_SPINCOUNT=10000
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

# name: (train.threads, None: torch's count; waiting: "slotfill" as the train command
# sets it, or the environment given; the label in results)
POLICIES = {
    "slotfill": (0, "slotfill", "slotfill's default (train.threads=0)"),
    "passive governed": (0, {"OMP_WAIT_POLICY": "PASSIVE"},
                         "train.threads=0, OMP_WAIT_POLICY=passive (the last default)"),
    "torch": (None, {}, "torch's defaults"),
    "active 2": (2, {"OMP_WAIT_POLICY": "ACTIVE"}, "OMP_WAIT_POLICY=active train.threads=2"),
    "passive 2": (2, {"OMP_WAIT_POLICY": "PASSIVE"},
                  "OMP_WAIT_POLICY=passive train.threads=2"),
    "spin 10000 2": (2, {"GOMP_SPINCOUNT": "10000"}, "GOMP_SPINCOUNT=10000 train.threads=2"),
    "one thread": (1, "slotfill", "train.threads=1"),
}
NEIGHBOURS = ("none", "busy loop", "second training")
BESIDE = ("slotfill", "passive governed", "torch", "one thread")  # timed beside neighbours
BUSY_LOOP = [sys.executable, "-c", "while True: pass"]
EPOCHS = 3


def child(atis: Path, fraction: float, threads: int | None, epochs: int,
          slotfill_waiting: bool) -> None:
    """In the child: train `epochs` epochs; prints JSON with each epoch's seconds."""
    started = time.perf_counter()
    if slotfill_waiting:
        from slotfill.threads import set_waiting
        set_waiting("active")  # before torch starts, as `slotfill train` does
    import torch

    from benchmarks.reference import slotfill_config
    from slotfill.data.corpus import read_corpus
    from slotfill.data.vocab import Vocabs
    from slotfill.training.prepare import Prepared
    from slotfill.training.trainer import Trainer

    corpus = read_corpus(atis)
    corpus.splits["train"] = corpus["train"][: int(len(corpus["train"]) * fraction)]
    cfg = slotfill_config(atis, seed=1, epochs=epochs, threads=threads)
    trainer = Trainer(cfg, Prepared(corpus, Vocabs.build(corpus["train"])))
    seconds = [trainer.train_epoch().seconds for _ in range(epochs)]
    print(json.dumps({"seconds": seconds, "wall": time.perf_counter() - started,
                      "threads": torch.get_num_threads(), "setup": trainer.threads.describe()}))


def start_child(atis: Path, fraction: float, policy: str, epochs: int) -> subprocess.Popen:
    threads, waiting, _ = POLICIES[policy]
    env = {k: v for k, v in os.environ.items() if k not in (*WAIT_SETTINGS, "OMP_NUM_THREADS")}
    if waiting != "slotfill":
        env.update(waiting)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--atis", str(atis),
               "--fraction", str(fraction), "--epochs", str(epochs),
               "--threads", "torch" if threads is None else str(threads)]
    if waiting == "slotfill":
        command.append("--slotfill-waiting")
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"epoch timing child failed with status {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1])


def measure(atis: Path, fraction: float, policy: str, neighbour: str) -> dict:
    """One child's epochs and wall time under `policy` beside `neighbour`."""
    other = None
    if neighbour == "busy loop":
        other = subprocess.Popen(BUSY_LOOP)
    elif neighbour == "second training":  # longer, so that it lasts the whole measurement
        other = start_child(atis, fraction, policy, EPOCHS + 2)
    try:
        time.sleep(0.5 if other else 0)  # the neighbour is running before we start
        return finish(start_child(atis, fraction, policy, EPOCHS))
    finally:
        if other is not None:
            other.kill()
            other.wait()


def shared_machine(atis: Path, quick: bool, repeats: int,
                   policies: tuple[str, ...] | None = None) -> dict[tuple[str, str], dict]:
    """Per (policy, neighbour): the median of each epoch's seconds and of the wall time
    over `repeats`, conditions alternating. Every policy idle; BESIDE's policies beside
    each neighbour. Quick: a tenth of ATIS, slotfill's and torch's policies, idle and
    beside a busy loop."""
    fraction = 0.1 if quick else 1.0
    policies = policies or (("slotfill", "torch") if quick else tuple(POLICIES))
    neighbours = NEIGHBOURS[:2] if quick else NEIGHBOURS
    runs: dict[tuple[str, str], list[dict]] = {}
    for _ in range(repeats):
        for neighbour in neighbours:
            for policy in policies:
                if neighbour != "none" and policy not in BESIDE:
                    continue
                result = measure(atis, fraction, policy, neighbour)
                runs.setdefault((policy, neighbour), []).append(result)
                epochs = " / ".join(f"{s:.2f}" for s in result["seconds"])
                print(f"  {policy:>16} beside {neighbour:<15} epochs {epochs} s, "
                      f"wall {result['wall']:.1f} s ({result['setup']})", flush=True)
    return {key: {"seconds": [statistics.median(r["seconds"][i] for r in results)
                              for i in range(EPOCHS)],
                  "wall": statistics.median(r["wall"] for r in results)}
            for key, results in runs.items()}


def epoch(cell: dict) -> float:
    """The figure a cell is compared by: its mean epoch."""
    return statistics.mean(cell["seconds"])


def rows(cells: dict[tuple[str, str], dict], quick: bool):
    """(figure, value, target, met) rows for speed.py's table."""
    share = "a tenth of ATIS" if quick else "ATIS"
    out = []
    for (policy, neighbour), cell in cells.items():
        epochs = " / ".join(f"{s:.2f}" for s in cell["seconds"])
        out.append((f"{POLICIES[policy][2]}, beside {neighbour}: epochs 1 / 2 / 3 on {share} "
                    f"(s); {EPOCHS} epochs, wall (s)", f"{epochs}; {cell['wall']:.1f}", "", None))
    for policy in dict.fromkeys(p for p, _ in cells):
        idle = epoch(cells[(policy, "none")])
        for neighbour in [n for n in NEIGHBOURS[1:] if (policy, n) in cells]:
            cost = epoch(cells[(policy, neighbour)]) / idle
            target = "<= 2.5x" if policy == "slotfill" else ""
            out.append((f"{POLICIES[policy][2]}: epoch beside {neighbour} / idle epoch",
                        f"{cost:.2f}x", target, cost <= 2.5 if target else None))
    rivals = [p for p in ("torch", "active 2", "one thread") if (p, "none") in cells]
    if rivals:
        best = min(rivals, key=lambda p: epoch(cells[(p, "none")]))
        kept = epoch(cells[("slotfill", "none")]) / epoch(cells[(best, "none")])
        out.append((f"idle epoch, slotfill's default / the best of {', '.join(rivals)} "
                    f"({POLICIES[best][2]})", f"{kept:.2f}x", "<= 1.05x", kept <= 1.05))
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
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=argparse.SUPPRESS)
    parser.add_argument("--threads", default="0", help=argparse.SUPPRESS)
    parser.add_argument("--slotfill-waiting", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.atis, args.fraction, None if args.threads == "torch" else int(args.threads),
              args.epochs, args.slotfill_waiting)
        return
    cells = shared_machine(args.atis, args.quick, args.repeats, args.policies)
    for figure, value, target, _ in rows(cells, args.quick):
        print(f"{figure:100s} {value:>24s}  {target}")


if __name__ == "__main__":
    main()
