"""Simulated active learning on ATIS: how much of the training set each selection
strategy needs to label before a model is as good as one trained on all of it.

    python benchmarks/active.py [--data DIR] [--seeds 3] [--strategies mnlp random ...]
                                [--jobs 2] [--runs-dir runs/active]
                                [--output benchmarks/results/active.md]

Each (strategy, seed) starts from the same 5% of ATIS train (a random draw of that seed)
labelled and the rest as the unlabelled pool, trains `configs/bilstm-crf.yaml` with the
joint intent head, then adds 5% of train a round, chosen from the pool by the strategy
(`slotfill.loop.uncertainty`, what `slotfill select` ranks by) with the round's model, up
to 50%. Round 1 trains from scratch; each later round fine-tunes the previous round's
model on everything labelled so far (`train.init`). Every round's best.pt (chosen on the
full dev set) is scored on test. The full-data reference is the same config trained
from scratch on all of train, once per seed. Runs go to --runs-dir and a finished round
is reused, so an interrupted benchmark continues. The table gives the 3-seed means per
round, against labelled utterances and labelled words (a person's cost is closer to the
words: uncertainty favours long utterances), the share of train at which each strategy
first reaches 99% of the full-data slot F1, and the picture active.svg.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import command_line, describe, load_average, shown_path  # noqa: E402
from benchmarks.accuracy import DEFAULT_ATIS, train_once  # noqa: E402

START, STEP, STOP = 0.05, 0.05, 0.50  # shares of train: first labelled, per round, last
CONFIG = "bilstm-crf.yaml"
BASE = ("model.intent=true", "train.select=f1_intent", "train.threads=1",
        "train.report=false")
FIRST = ("train.epochs=30", "train.patience=5")  # from scratch (and the reference)
LATER = ("train.epochs=6", "train.patience=2")  # fine-tuning the previous round
TARGET_SHARE = 0.99  # of the full-data slot F1


def read_train(data: Path) -> list[tuple[str, str, str]]:
    files = [(data / "train" / n).read_text().splitlines() for n in ("seq.in", "seq.out",
                                                                      "label")]
    return list(zip(*files))


def write_corpus(folder: Path, data: Path, rows: list[tuple[str, str, str]]) -> Path:
    """An ATIS-format corpus: `rows` as train, the real valid and test sets."""
    (folder / "train").mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(("seq.in", "seq.out", "label")):
        (folder / "train" / name).write_text("\n".join(r[i] for r in rows) + "\n")
    for split in ("valid", "test"):
        if not (folder / split).exists():
            (folder / split).symlink_to((data / split).resolve())
    return folder


def trained(run: Path, corpus: Path, seed: int, extra: tuple) -> dict:
    """Train into `run` unless it finished before; its metrics."""
    from slotfill.config import load_config
    from slotfill.training.rundir import RunDir

    train_once(run, lambda: load_config(ROOT / "configs" / CONFIG, [
        f"data.path={corpus}", f"train.seed={seed}", *BASE, *extra]))
    return RunDir(run).read_metrics()


def choose(run: Path, pool: list[int], rows, strategy: str, count: int, seed: int,
           round_: int) -> list[int]:
    """`count` pool indices, the most uncertain first (random: a draw)."""
    if strategy == "random":
        return random.Random(seed * 1000 + round_).sample(pool, count)
    from slotfill.loop.uncertainty import uncertainty
    from slotfill.models.checkpoint import load_checkpoint

    ckpt = load_checkpoint(run / "best.pt")
    scores = uncertainty(ckpt.build_model(), ckpt.vocabs, [rows[i][0].split() for i in pool],
                         strategy, samples=10, seed=seed + round_)
    order = sorted(range(len(pool)), key=lambda j: (-scores[j], j))
    return [pool[j] for j in order[:count]]


def chain(strategy: str, seed: int, data: str, runs_dir: str) -> dict:
    """One strategy and seed, every round; its curve."""
    import torch

    torch.set_num_threads(1)
    data, runs = Path(data), Path(runs_dir) / f"{strategy}-seed{seed}"
    rows = read_train(data)
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    step = round(STEP * len(rows))
    labelled = order[:round(START * len(rows))]
    rounds = round((STOP - START) / STEP) + 1
    curve, previous, started = [], None, time.perf_counter()
    runs.mkdir(parents=True, exist_ok=True)
    for round_ in range(1, rounds + 1):
        record = runs / f"round-{round_}.labelled.json"  # an interrupted chain continues
        if record.is_file():
            labelled = json.loads(record.read_text())
        else:
            record.write_text(json.dumps(labelled))
        run = runs / f"round-{round_}"
        corpus = write_corpus(runs / f"corpus-{round_}", data, [rows[i] for i in labelled])
        extra = FIRST if previous is None else (*LATER, f"train.init={previous}")
        metrics = trained(run, corpus, seed, extra)
        curve.append({"round": round_, "utterances": len(labelled),
                      "words": sum(len(rows[i][0].split()) for i in labelled),
                      "f1": metrics["test"]["f1"],
                      "intent": metrics["test"]["intent_accuracy"]})
        pool = sorted(set(range(len(rows))) - set(labelled))
        if round_ == rounds or not pool:
            break
        labelled = labelled + choose(run, pool, rows, strategy, min(step, len(pool)), seed,
                                     round_)
        previous = run
    return {"strategy": strategy, "seed": seed, "curve": curve, "total_words":
            sum(len(r[0].split()) for r in rows), "total": len(rows),
            "minutes": (time.perf_counter() - started) / 60}


def reference(seed: int, data: str, runs_dir: str) -> dict:
    import torch

    torch.set_num_threads(1)
    metrics = trained(Path(runs_dir) / f"full-seed{seed}", Path(data), seed, FIRST)
    return {"seed": seed, "f1": metrics["test"]["f1"],
            "intent": metrics["test"]["intent_accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_ATIS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--strategies", nargs="+",
                        default=["mnlp", "random", "entropy", "bald"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "active")
    parser.add_argument("--output", type=Path,
                        default=ROOT / "benchmarks" / "results" / "active.md")
    parser.add_argument("--table-only", action="store_true",
                        help="write the results again from RUNS_DIR/curves.json")
    args = parser.parse_args()
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    if args.table_only:
        saved = json.loads((args.runs_dir / "curves.json").read_text())
        write_results(args, saved["references"], saved["curves"], saved["minutes"])
        return
    started = time.time()
    data, runs = str(args.data.resolve()), str(args.runs_dir.resolve())
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        full = [pool.submit(reference, s, data, runs) for s in range(1, args.seeds + 1)]
        chains = [pool.submit(chain, strategy, s, data, runs)
                  for s in range(1, args.seeds + 1) for strategy in args.strategies]
        references = [f.result() for f in full]
        curves = []
        for future in chains:
            curves.append(future.result())
            last = curves[-1]["curve"][-1]
            print(f"{curves[-1]['strategy']} seed {curves[-1]['seed']}: {last['utterances']} "
                  f"utterances, test F1 {100 * last['f1']:.2f}", flush=True)
    minutes = (time.time() - started) / 60
    (args.runs_dir / "curves.json").write_text(json.dumps(
        {"references": references, "curves": curves, "minutes": minutes}, indent=1))
    write_results(args, references, curves, minutes)


def mean_curves(curves: list[dict]) -> dict[str, list[dict]]:
    """Per strategy, each round's means over the seeds."""
    by: dict[str, list[list[dict]]] = {}
    for c in curves:
        by.setdefault(c["strategy"], []).append(c["curve"])
    out = {}
    for strategy, runs in by.items():
        rounds = min(map(len, runs))
        out[strategy] = [{key: statistics.mean(r[i][key] for r in runs)
                          for key in ("utterances", "words", "f1", "intent")}
                         | {"seeds": len(runs)} for i in range(rounds)]
    return out


def first_reaching(curve: list[dict], goal: float, total: int, total_words: int):
    """The share of train's utterances and words at the first round whose mean F1
    reaches `goal`, or None."""
    for point in curve:
        if point["f1"] >= goal:
            return point["utterances"] / total, point["words"] / total_words
    return None


def write_results(args, references, curves, minutes: float) -> None:
    import torch

    full_f1 = statistics.mean(r["f1"] for r in references)
    goal = TARGET_SHARE * full_f1
    means = mean_curves(curves)
    total, total_words = curves[0]["total"], curves[0]["total_words"]
    lines = ["# Simulated active learning on ATIS", "",
             f"- command: `{command_line()}`", f"- date: {date.today().isoformat()}",
             f"- corpus: `{shown_path(args.data)}`; `configs/{CONFIG}` with "
             f"{', '.join(f'`{o}`' for o in BASE[:2])}; round 1 from scratch "
             f"({', '.join(FIRST)}), later rounds fine-tune the previous one "
             f"({', '.join(LATER)}); best.pt on the full dev set, scores on test",
             f"- machine: {describe()}; torch {torch.__version__}; {args.jobs} chains in "
             f"parallel with 1 thread each; load average at the end {load_average()}; "
             f"{minutes:.0f} minutes", f"- runs: `{shown_path(args.runs_dir)}`", "",
             f"Full-data reference (all {total} utterances, {len(references)} seeds): test "
             f"slot F1 {100 * full_f1:.2f}, intent accuracy "
             f"{100 * statistics.mean(r['intent'] for r in references):.2f}; 99% of its F1 "
             f"is {100 * goal:.2f}.", "",
             "## First reaching 99% of the full-data slot F1", "",
             "| strategy | seeds | share of utterances | share of words | against random |",
             "|---|---:|---:|---:|---:|"]
    reached = {s: first_reaching(c, goal, total, total_words) for s, c in means.items()}
    for strategy, curve in means.items():
        found = reached[strategy]
        ratio = ""
        if found and strategy != "random" and "random" in reached:
            ratio = (f"random needs {reached['random'][0] / found[0]:.2f}x the utterances"
                     if reached["random"] else
                     f"random needs more than {STOP / found[0]:.2f}x (not by {100 * STOP:.0f}%)")
        lines.append(f"| {strategy} | {curve[0]['seeds']} | "
                     + (f"{100 * found[0]:.0f}% | {100 * found[1]:.0f}% | {ratio} |" if found
                        else f"not by {100 * STOP:.0f}% |  |  |"))
    lines += ["", "## Learning curves (means over seeds)", "",
              "| strategy | " + " | ".join(f"{100 * (START + i * STEP):.0f}%"
                                         for i in range(len(next(iter(means.values())))))
              + " |", "|---|" + "---:|" * len(next(iter(means.values())))]
    for strategy, curve in means.items():
        lines.append(f"| {strategy}: slot F1 | "
                     + " | ".join(f"{100 * p['f1']:.2f}" for p in curve) + " |")
        lines.append(f"| {strategy}: intent acc. | "
                     + " | ".join(f"{100 * p['intent']:.2f}" for p in curve) + " |")
        lines.append(f"| {strategy}: words labelled | "
                     + " | ".join(f"{100 * p['words'] / total_words:.0f}%" for p in curve)
                     + " |")
    picture = args.output.with_suffix(".svg")
    picture.write_text(chart(means, full_f1, total, total_words))
    lines += ["", f"![learning curves]({picture.name})", "",
              "Anchors: Shen et al. (ICLR 2018) reach 99% of full-data F1 with about 25% of "
              "OntoNotes by MNLP; Settles and Craven (2008) compare the strategies on "
              "sequence labelling. Targets here: MNLP at most 25% of the utterances, "
              "random at least 1.5x as many."]
    args.output.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output} and {picture}")


def chart(means: dict[str, list[dict]], full_f1: float, total: int, total_words: int) -> str:
    """Slot F1 against the share of utterances and of words labelled, a panel each."""
    from slotfill.analysis.svg import MUTED, Drawing, Plot, legend, tick_labels, ticks

    colours = {"mnlp": "#2563eb", "random": "#dc2626", "entropy": "#16a34a",
               "margin": "#d97706", "bald": "#9333ea"}
    d = Drawing(960, 400, "Test slot F1 against the share of ATIS train labelled, per "
                          "selection strategy")
    values = [100 * p["f1"] for c in means.values() for p in c] + [100 * full_f1]
    y = ticks(min(values), max(values))
    for column, (key, size, label) in enumerate((("utterances", total, "utterances labelled"),
                                                 ("words", total_words, "words labelled"))):
        shares = [100 * p[key] / size for c in means.values() for p in c]
        x = ticks(0, max(shares))
        plot = Plot(d, 60 + 480 * column, 50, 400, 280, (x[0], x[-1]), (y[0], y[-1]))
        d.text(plot.left, 30, f"test slot F1 against {label} (%)", size=13, bold=True)
        plot.y_axis(y)
        plot.x_axis(x, tick_labels(x), title=f"% of train's {key}")
        plot.frame()
        d.line(plot.left, plot.y(100 * full_f1), plot.right, plot.y(100 * full_f1), MUTED,
               1.2, dash="5 4", tip=f"all of train: {100 * full_f1:.2f}")
        for strategy, curve in means.items():
            points = [(plot.x(100 * p[key] / size), plot.y(100 * p["f1"])) for p in curve]
            d.polyline(points, colours.get(strategy, "#000"), 2.0)
            for px, py in points:
                d.circle(px, py, 2.5, colours.get(strategy, "#000"))
    legend(d, 60, 385, [(s, colours.get(s, "#000"), "line") for s in means]
           + [("all of train", MUTED, "dashed")])
    return d.document("active")


if __name__ == "__main__":
    main()
