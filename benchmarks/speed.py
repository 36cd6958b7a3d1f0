"""Speed benchmark: slotfill against a plain PyTorch loop on the real ATIS split.

    python benchmarks/speed.py [--atis DIR] [--quick] [--device cpu|cuda] [--no-shared]
                               [--output benchmarks/results/speed.md]

Throughput contenders run in this one process, alternating over repetitions (medians
reported), so that machine noise hits both alike; both use all cores' threads and the
wait policy of `slotfill train` (the thread policy itself is measured in its own rows).
End to end, `slotfill train` (default BiLSTM config, 3 ATIS epochs, start-up, dev
scoring, final evaluation and report included) and the reference loop as a script
(benchmarks/reference.py, torch's defaults) run in turn, twice each, each a fresh
process; the run directory's file times split slotfill's wall time into its phases.
Start-up times, peak memory and the thread-policy rows (benchmarks/neighbours.py: each
thread and wait setting idle, and beside a busy neighbour) are measured in child
processes. `--device cuda` adds the GPU rows (benchmarks/gpu.py) beside the same
figures on this machine's CPU, and fails at once where there is no CUDA device. Writes a
markdown table (default benchmarks/results/speed.md, or speed-cuda.md with --device
cuda) with the date, machine, torch version, threads and command.

The reference is the loop many people write first (benchmarks/reference.py): stock
nn.LSTM over pack_padded_sequence, random batches of 32 built from Python lists each step.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
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

from slotfill.threads import (  # noqa: E402  (imports no torch)
    WAIT_SETTINGS, release_idle_threads, set_waiting)

set_waiting("active")  # as `slotfill train` does, before torch starts its threads

import torch  # noqa: E402

from benchmarks import gpu, neighbours  # noqa: E402
from benchmarks.machine import command_line, describe, load_average, shown_path  # noqa: E402
from benchmarks.reference import (  # noqa: E402
    BATCH,
    DEFAULT_ATIS,
    EMB,
    EVAL_BATCH,
    HIDDEN,
    from_vocabs,
    slotfill_config,
)
from slotfill.analysis.evaluate import SplitScorer  # noqa: E402
from slotfill.analysis.metrics import score  # noqa: E402
from slotfill.data.corpus import read_corpus  # noqa: E402
from slotfill.data.vocab import Vocabs  # noqa: E402
from slotfill.serving.predict import Predictor  # noqa: E402
from slotfill.training.prepare import Prepared  # noqa: E402
from slotfill.training.trainer import Trainer  # noqa: E402


# --------------------------------------------------------------------------- helpers

def replace_config(cfg, section: str, **changes):
    return dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section),
                                                                     **changes)})


def flops_per_token(num_tags: int) -> float:
    """Forward + backward (3x forward) FLOPs of the recurrent and output matmuls."""
    lstm = 2 * 2 * 4 * HIDDEN * (EMB + HIDDEN)  # two directions, 4 gates, multiply-add
    output = 2 * 2 * HIDDEN * num_tags
    return 3 * (lstm + output)


def matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times)


def clean_env() -> dict[str, str]:
    """This environment without thread or wait settings: each command's own defaults."""
    return {k: v for k, v in os.environ.items() if k not in (*WAIT_SETTINGS, "OMP_NUM_THREADS")}


def slotfill_end_to_end(atis: Path, epochs: int, folder: Path) -> dict[str, float]:
    """`slotfill train` as a user runs it (default config, report included), a fresh
    process; its phases from the times its run directory's files were last written:
    start-up (imports, config, corpus) until config.yaml, the epochs (history.csv's
    seconds: training and dev scoring) and their set-up and checkpoints until the last
    history.csv, the final evaluation until metrics.json, the report until report.html."""
    run = folder / "run"
    started = time.time()
    subprocess.run([sys.executable, "-m", "slotfill", "train", f"data.path={atis}",
                    f"train.epochs={epochs}", "--output", str(run)], check=True,
                   capture_output=True, env=clean_env(), cwd=folder)
    ended = time.time()
    written = {name: (run / name).stat().st_mtime
               for name in ("config.yaml", "history.csv", "metrics.json", "report.html")}
    with open(run / "history.csv", encoding="utf-8") as f:
        epoch_seconds = sum(float(row["seconds"]) for row in csv.DictReader(f))
    return {"wall": ended - started, "start-up": written["config.yaml"] - started,
            "epochs": epoch_seconds,
            "epochs' set-up and checkpoints": written["history.csv"] - written["config.yaml"]
            - epoch_seconds,
            "final evaluation": written["metrics.json"] - written["history.csv"],
            "report": written["report.html"] - written["metrics.json"],
            "exit": ended - written["report.html"]}


def quick_corpus(atis: Path, folder: Path) -> Path:
    """A smoke run's corpus: a tenth of ATIS's training split, valid and test whole."""
    for split in ("train", "valid", "test"):
        (folder / "atis" / split).mkdir(parents=True)
        for name in ("seq.in", "seq.out", "label"):
            lines = (atis / split / name).read_text(encoding="utf-8").splitlines()
            keep = lines[: len(lines) // 10] if split == "train" else lines
            (folder / "atis" / split / name).write_text("\n".join(keep) + "\n", "utf-8")
    return folder / "atis"


def reference_end_to_end(atis: Path, epochs: int) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "benchmarks/reference.py"), "--atis", str(atis),
                    "--epochs", str(epochs)], check=True, capture_output=True, env=clean_env())
    return time.perf_counter() - started


def wall_times(command: list[str], repeats: int, cwd: Path | None = None) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=cwd)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_rss_mib(command: list[str], cwd: Path) -> float:
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"{command} failed")
    return usage.ru_maxrss / 1024  # KiB on Linux


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# --------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--atis", type=Path, default=DEFAULT_ATIS)
    parser.add_argument("--quick", action="store_true", help="a smoke run, under a minute")
    parser.add_argument("--repeats", type=int, help="throughput repetitions (default 5)")
    parser.add_argument("--accuracy-epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, help="accuracy seeds (default 3)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: add the GPU rows (needs a CUDA device)")
    parser.add_argument("--no-shared", action="store_true",
                        help="skip the thread-policy rows (epochs idle and beside neighbours)")
    parser.add_argument("--shared-repeats", type=int, help="default 1 (quick) or 2")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    card = gpu.require_cuda() if args.device == "cuda" else None  # fail before the work
    if args.output is None:
        args.output = ROOT / "benchmarks/results" / (
            "speed-cuda.md" if card else "speed.md")
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    if args.seeds is None:
        args.seeds = 0 if args.quick else 3
    if args.shared_repeats is None:
        args.shared_repeats = 1 if args.quick else 2
    command, load = command_line(), load_average()
    rows: list[tuple[str, str, str, str]] = []  # figure, value, target, met

    def row(figure: str, value: str, target: str = "", met: bool | None = None) -> None:
        rows.append((figure, value, target, "" if met is None else ("yes" if met else "no")))
        print(f"{figure:55s} {value:>16s}  {target:>12s}  {rows[-1][3]}", flush=True)

    corpus = read_corpus(args.atis)
    if args.quick:  # a smoke run: time a tenth of the training set
        corpus.splits["train"] = corpus["train"][: len(corpus["train"]) // 10]
    vocabs = Vocabs.build(corpus["train"])
    prepared = Prepared(corpus, vocabs)
    cfg = slotfill_config(args.atis, seed=1, epochs=1)
    flops_token = flops_per_token(len(vocabs.tags))
    print(f"threads {torch.get_num_threads()}, torch {torch.__version__}, "
          f"{flops_token / 1e6:.2f} MFLOP per token (forward + backward)")

    # training throughput, alternating contenders
    reference = from_vocabs(corpus["train"], vocabs, seed=1)
    fast = Trainer(cfg, prepared)
    random_batches = Trainer(replace_config(cfg, "train", batching="random"), prepared)
    crf = Trainer(replace_config(cfg, "model", head="crf"), prepared)
    contenders = {  # each returns the tokens it trained on
        "reference": reference.train_epoch,
        "slotfill": lambda: fast.train_epoch().tokens,
        "slotfill, batching=random": lambda: random_batches.train_epoch().tokens,
        "slotfill, CRF head": lambda: crf.train_epoch().tokens,
    }
    for run in contenders.values():  # warm-up
        run()
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    mm_rates = []
    for _ in range(args.repeats):
        for name, run in contenders.items():
            t = time.perf_counter()
            tokens = run()
            rates[name].append(tokens / (time.perf_counter() - t))
        mm_rates.append(matmul_flops())
    median = {name: statistics.median(v) for name, v in rates.items()}
    ref_rate, fast_rate, mm = median["reference"], median["slotfill"], statistics.median(mm_rates)
    for name, rate in median.items():
        row(f"{name} training (tokens/s)", f"{rate:,.0f}")
    row("training speed-up slotfill / reference", f"{fast_rate / ref_rate:.2f}x", ">= 3x",
        fast_rate / ref_rate >= 3)
    tokens = fast.data.lengths.sum().item()
    row("slotfill ATIS epoch (s)", f"{tokens / fast_rate:.2f}")
    crf_cost = fast_rate / median["slotfill, CRF head"]
    row("CRF epoch / softmax epoch", f"{crf_cost:.2f}x", "<= 1.3x", crf_cost <= 1.3)
    row("large torch.mm (GFLOP/s)", f"{mm / 1e9:.1f}")
    achieved = fast_rate * flops_token
    row("slotfill model FLOP/s (GFLOP/s)", f"{achieved / 1e9:.1f}")
    row("model FLOP/s / torch.mm FLOP/s", f"{achieved / mm:.0%}", ">= 50%", achieved / mm >= 0.5)

    # end to end, in child processes, in turn; first this process's idle OpenMP threads
    # end, which under active waiting would spin on a core beside the children
    release_idle_threads()
    epochs_e2e = 1 if args.quick else 3
    slotfill_runs, reference_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        atis = quick_corpus(args.atis, Path(tmp)) if args.quick else args.atis
        for i in range(1 if args.quick else 2):
            folder = Path(tmp) / f"e2e-{i}"
            folder.mkdir()
            slotfill_runs.append(slotfill_end_to_end(atis, epochs_e2e, folder))
            reference_runs.append(reference_end_to_end(atis, epochs_e2e))
    walls = [r["wall"] for r in slotfill_runs]
    mine, theirs = statistics.median(walls), statistics.median(reference_runs)
    share = "1 epoch on a tenth of ATIS" if args.quick else f"{epochs_e2e} ATIS epochs"
    row(f"reference loop end to end, {share} (s; runs)",
        f"{theirs:.1f}; " + ", ".join(f"{t:.1f}" for t in reference_runs))
    row(f"`slotfill train` end to end, {share} (s; runs)",
        f"{mine:.1f}; " + ", ".join(f"{t:.1f}" for t in walls))
    row("end-to-end speed-up slotfill / reference", f"{theirs / mine:.2f}x", ">= 2.5x",
        theirs / mine >= 2.5)
    for phase in slotfill_runs[0]:
        if phase != "wall":
            seconds = statistics.median(r[phase] for r in slotfill_runs)
            row(f"  `slotfill train` {phase} (s)", f"{seconds:.2f} ({seconds / mine:.0%})")

    # inference: whole test set, batches of 256 in file order
    test_texts = [" ".join(e.tokens) for e in corpus["test"]]
    test_tokens = [e.tokens for e in corpus["test"]]
    with tempfile.TemporaryDirectory() as tmp:
        from slotfill.models.checkpoint import save_checkpoint
        ckpt = Path(tmp) / "model.pt"
        save_checkpoint(ckpt, fast.model, cfg, vocabs, {"epoch": 0})
        predictor = Predictor(ckpt)
        chunks = [range(i, min(i + EVAL_BATCH, len(test_texts)))
                  for i in range(0, len(test_texts), EVAL_BATCH)]
        contenders = {  # the same 256-utterance batches, in file order
            "reference": lambda: reference.tag(test_tokens),
            "slotfill": lambda: [predictor.tag([test_tokens[i] for i in c]) for c in chunks],
            "text": lambda: [predictor.predict([test_texts[i] for i in c]) for c in chunks],
        }
        rates: dict[str, list[float]] = {name: [] for name in contenders}
        for run in contenders.values():  # warm-up
            run()
        for _ in range(args.repeats if args.quick else max(3, args.repeats)):
            for name, run in contenders.items():
                t = time.perf_counter()
                run()
                rates[name].append(len(test_texts) / (time.perf_counter() - t))
        ref_inf, fast_inf, text_inf = (statistics.median(rates[n]) for n in contenders)
        row("reference tagging, tokens -> tags (sentences/s)", f"{ref_inf:,.0f}")
        row("slotfill Predictor.tag, tokens -> tags (sentences/s)", f"{fast_inf:,.0f}")
        row("tagging speed-up slotfill / reference", f"{fast_inf / ref_inf:.2f}x", ">= 2x",
            fast_inf >= 2 * ref_inf)
        row("slotfill Predictor.predict, raw text -> slots (sentences/s)", f"{text_inf:,.0f}")
        latencies = []
        for text in test_texts[: 200 if args.quick else len(test_texts)]:
            t = time.perf_counter()
            predictor.predict([text])
            latencies.append((time.perf_counter() - t) * 1000)
        p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
        row("single utterance latency p50 (ms)", f"{p50:.2f}", "<= 2 ms", p50 <= 2)
        row("single utterance latency p99 (ms)", f"{p99:.2f}")

        # start-up, in child processes (this process's threads end first, as above)
        release_idle_threads()
        slotfill = [sys.executable, "-m", "slotfill"]
        n = 1 if args.quick else 7
        torch_import = wall_times([sys.executable, "-c", "import torch"], n)
        help_time = wall_times([*slotfill, "--help"], n)
        predict_time = wall_times([*slotfill, "predict", "--model", str(ckpt),
                                   "arrive taipei on nov 2nd"], n)
        row("python -c 'import torch' (s)", f"{torch_import:.2f}")
        row("slotfill --help (s)", f"{help_time:.2f}", "<= 0.3 s", help_time <= 0.3)
        row("cold slotfill predict (s)", f"{predict_time:.2f}")
        row("cold predict minus import torch (s)", f"{predict_time - torch_import:.2f}",
            "<= 1.0 s", predict_time - torch_import <= 1.0)

        # peak memory of a training run (child process)
        epochs = 1 if args.quick else 2
        rss = peak_rss_mib([*slotfill, "train", str(ROOT / "configs/bilstm.yaml"),
                            f"data.path={args.atis}", f"train.epochs={epochs}",
                            "--output", str(Path(tmp) / "run")], cwd=Path(tmp))
        row(f"peak RSS, slotfill train on ATIS, {epochs} epochs (MiB)", f"{rss:,.0f}",
            "<= 1024 MiB", rss <= 1024)

    # accuracy: same epochs, several seeds, test F1 at the last epoch
    if args.seeds:
        ref_f1, fast_f1 = [], []
        gold = [list(e.tags) for e in corpus["test"]]
        for seed in range(1, args.seeds + 1):
            reference = from_vocabs(corpus["train"], vocabs, seed=seed)
            trainer = Trainer(slotfill_config(args.atis, seed, args.accuracy_epochs), prepared)
            for _ in range(args.accuracy_epochs):
                reference.train_epoch()
                trainer.train_epoch()
            ref_f1.append(100 * score(gold, reference.tag(test_tokens))["f1"])
            fast_f1.append(100 * SplitScorer(corpus["test"], vocabs).score(trainer.model)["f1"])
            print(f"seed {seed}: reference {ref_f1[-1]:.2f}, slotfill {fast_f1[-1]:.2f}")
        mean_ref, mean_fast = statistics.mean(ref_f1), statistics.mean(fast_f1)
        spread = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
        row(f"reference test F1, {args.accuracy_epochs} epochs, {args.seeds} seeds",
            f"{mean_ref:.2f} ± {spread(ref_f1):.2f}")
        row(f"slotfill test F1, {args.accuracy_epochs} epochs, {args.seeds} seeds",
            f"{mean_fast:.2f} ± {spread(fast_f1):.2f}", "within 0.3",
            mean_fast >= mean_ref - 0.3)

    # training beside other work, in child processes (this process's threads end first)
    if not args.no_shared:
        release_idle_threads()
        print("thread policies: epochs idle and beside a neighbour", flush=True)
        for figure, value, target, met in neighbours.rows(
                neighbours.shared_machine(args.atis, args.quick, args.shared_repeats),
                args.quick):
            row(figure, value, target, met)

    gpu_table = None
    if card:
        print(f"GPU: {card}", flush=True)
        cpu = {"epoch": tokens / fast_rate, "crf_epoch": tokens / median["slotfill, CRF head"],
               "tagging": fast_inf}

        def make_trainer(*overrides: str) -> Trainer:
            return Trainer(slotfill_config(args.atis, 1, 1, overrides), prepared)
        gpu_table = (card, gpu.gpu_rows(make_trainer, test_tokens, args.repeats, cpu))
        for figure, on_gpu, on_cpu, target, _ in gpu_table[1]:
            print(f"{figure:55s} {on_gpu:>10s} {on_cpu:>10s}  {target}", flush=True)

    write_results(args.output, command, rows, flops_token, load, gpu_table)


def write_results(path: Path, command: str, rows, flops_token: float, load: str,
                  gpu_table=None) -> None:
    lines = [
        "# Speed benchmark", "",
        f"- command: `{command}`",
        f"- date: {date.today().isoformat()}",
        f"- machine: {describe()}; load average {load} before the run, {load_average()} "
        "after it",
        f"- torch {torch.__version__}, {torch.get_num_threads()} threads; in-process rows: "
        "OpenMP threads spin while they wait, as `slotfill train` sets them",
        f"- model: BiLSTM, embedding {EMB}, hidden {HIDDEN}, batch {BATCH}, no dropout, "
        f"gradient clipping 5, Adam 1e-3; {flops_token / 1e6:.2f} MFLOP per token forward + "
        "backward",
        "- end to end: `slotfill train data.path=ATIS train.epochs=3` (the default BiLSTM "
        "config: dropout, report) against `python benchmarks/reference.py` (the same model "
        "as a plain script with dev scoring each epoch and a test score at the end), each a "
        "fresh process with no thread settings, in turn, twice each; phases of slotfill's "
        "wall time from its run directory's file times",
        "- thread-policy rows: each a child process (benchmarks/neighbours.py) training the "
        "model above for 3 epochs; beside a one-thread busy loop or a second identical "
        "training; slotfill's default = train.threads=0 as `slotfill train` runs it "
        "(active waiting, threads follow the free cores, idle threads released when they "
        "drop), torch's defaults = OpenMP's own waiting and one thread per core",
        "", "| figure | value | target | met |", "|---|---:|---:|:---:|",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows], ""]
    if gpu_table is not None:
        card, gpu_rows = gpu_table
        lines += [f"## GPU: {card}", "",
                  "Epochs: training only (no dev scoring), median after a warm-up epoch that "
                  "records the CUDA graphs. CPU: the same figures on this machine's CPU, from "
                  "the rows above.", "",
                  "| figure | GPU | CPU, same machine | target | met |",
                  "|---|---:|---:|---:|:---:|",
                  *[f"| {a} | {b} | {c} | {d} | {'' if e is None else ('yes' if e else 'no')} |"
                    for a, b, c, d, e in gpu_rows], ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
