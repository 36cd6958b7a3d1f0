"""Accuracy benchmark: shipped configs x seeds on an ATIS-format corpus.

    python benchmarks/accuracy.py [--data DIR] [--seeds 3] [--jobs 2] [--configs a b ...]
                                  [--output benchmarks/results/accuracy.md]

Each (config, seed) trains through slotfill's public API (`slotfill.training.run.train`) with
dev-based early stopping and checkpoint selection, then its best.pt is scored on test.
The table gives mean +- standard deviation over seeds of test slot F1, intent accuracy,
overall accuracy (every slot and the intent right) and sentence accuracy (every slot
right), epochs and minutes of training and dev evaluation per run, next to published
results. With two seeds or more, the seeds of ENSEMBLE_CONFIG also form an ensemble
(`slotfill ensemble`), scored as one more row. Every run (and the ensemble) is also
scored on two test sets of cities the corpus never had (benchmarks/unseen_cities.py
says how they are made from its test split). Runs go to --runs-dir (kept, so `slotfill
compare` can show them; a finished run found there is reused, so an interrupted
benchmark continues); the table to --output.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import command_line, describe, shown_path  # noqa: E402

DEFAULT_ATIS = Path(os.environ.get("SLOTFILL_ATIS_DIR", ROOT.parent / "shared/datasets/atis"))

# (config file, row label, target slot F1 from the accuracy issue, or None); a target
# stands on every row of its architecture, with and without the CRF head
ROWS = [
    ("rnn.yaml", "Elman RNN, window 3", 95.0),
    ("elman-crf.yaml", "Elman RNN, window 3, char CNN, gazetteers, CRF", 95.0),
    ("jordan.yaml", "Jordan RNN, window 3", 94.3),
    ("jordan-crf.yaml", "Jordan RNN, window 3, char CNN, gazetteers, CRF, substitution",
     94.3),
    ("lstm.yaml", "LSTM", 94.8),
    ("lstm-crf.yaml", "LSTM, char CNN, CRF", 94.8),
    ("gru.yaml", "GRU", None),
    ("birnn.yaml", "BiRNN (Elman)", None),
    ("bilstm.yaml", "BiLSTM", 95.3),
    ("bilstm-crf.yaml", "BiLSTM, CRF", 95.3),
    ("seq2seq.yaml", "encoder-decoder with attention, joint intent", None),
    ("joint.yaml", "BiLSTM, char CNN, gazetteers, CRF, joint intent, substitution", 96.0),
]

ENSEMBLE_CONFIG = "joint.yaml"  # the best single config: its seeds form the ensemble row
ENSEMBLE_TARGET = 96.3
MISSION = ("arrive Taipei on Nov 2nd", "leave Taipei on Nov 2nd")  # tagged by that config

PUBLISHED = [  # ATIS test slot F1 (and intent / overall accuracy where reported)
    ("Mesnil et al. 2015, Elman RNN (older 4,978-utterance split)", "94.98", "", ""),
    ("Mesnil et al. 2015, Jordan RNN (older split)", "94.29", "", ""),
    ("Mesnil et al. 2015, hybrid RNN (older split)", "95.06", "", ""),
    ("Yao et al. 2014, LSTM (older split)", "94.85", "", ""),
    ("Yao et al. 2014, deep LSTM (older split)", "95.08", "", ""),
    ("Goo et al. 2018, slot-gated", "95.2", "94.1", "82.6"),
    ("Qin et al. 2019, Stack-Propagation", "95.9", "96.9", "86.5"),
    ("Chen et al. 2019, Joint BERT (pretrained)", "96.1", "97.5", "88.2"),
]


def run_one(config: str, seed: int, data: str, runs_dir: str, overrides: list[str],
            unseen: dict[str, str]) -> dict:
    """Train one (config, seed) in this worker process, or reuse its finished run in
    runs_dir (so an interrupted benchmark continues); returns its scores, on test and on
    the `unseen` city test sets."""
    from slotfill.config import load_config
    from slotfill.training.run import train
    from slotfill.training.rundir import RunDir

    run_dir = Path(runs_dir) / f"{Path(config).stem}-seed{seed}"
    if RunDir(run_dir).read_status().get("state") != "finished":
        cfg = load_config(ROOT / "configs" / config, [
            f"data.path={data}", f"train.seed={seed}", "train.threads=1", *overrides])
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        train(cfg, run_dir)
    run = RunDir(run_dir).summary()
    return {"config": config, "seed": seed, "run": str(run_dir), "test": run["test"],
            "best_epoch": run["best_epoch"], "epochs": run["epochs"],
            "minutes": run["seconds"] / 60,
            "unseen": {name: score_unseen(run_dir / "best.pt", Path(folder))
                       for name, folder in unseen.items()},
            "mission": tag_mission(run_dir / "best.pt")}


def tag_mission(checkpoint: Path) -> list[str]:
    """The MISSION utterances' slots, as `value = slot` strings."""
    from slotfill.serving.predict import Predictor
    return ["; ".join(f"{s['value']} = {s['slot']}" for s in result["slots"]) or "(none)"
            for result in Predictor(checkpoint).predict(list(MISSION))]


def ensemble_row(runs: list[dict], runs_dir: Path, unseen: dict[str, str]) -> dict:
    """The ensemble of `runs` (one config's seeds), built once into runs_dir."""
    from slotfill.training.ensemble import build_ensemble
    from slotfill.training.rundir import RunDir

    out = runs_dir / f"{Path(ENSEMBLE_CONFIG).stem}-ensemble"
    if RunDir(out).read_status().get("state") != "finished":
        build_ensemble([r["run"] for r in runs], out, force=True)
    metrics = RunDir(out).read_metrics()
    return {"run": str(out), "test": metrics["test"], "members": len(runs),
            "against_seed1": against(Path(runs[0]["run"]) / "best.pt", out / "best.pt"),
            "unseen": {name: score_unseen(out / "best.pt", Path(folder))
                       for name, folder in unseen.items()},
            "mission": tag_mission(out / "best.pt")}


def summarise(values: list[float]) -> str:
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_ATIS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (1 thread each)")
    parser.add_argument("--configs", nargs="*", help="config files (default: every row)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides for every run (e.g. train.epochs=1 for a smoke test)")
    parser.add_argument("--runs-dir", type=Path, help="where runs go (default: a temp dir)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/accuracy.md")
    args = parser.parse_args()
    rows = [r for r in ROWS if not args.configs or r[0] in args.configs]
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="slotfill-accuracy-"))
    command = command_line()
    unseen = {name: str(folder) for name, folder in make_unseen_sets(args.data, runs_dir)}
    jobs = [(config, seed) for config, _, _ in rows for seed in range(1, args.seeds + 1)]
    print(f"{len(jobs)} runs, {args.jobs} at a time, into {runs_dir}", flush=True)
    results: dict[str, list[dict]] = {config: [] for config, _, _ in rows}
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_one, config, seed, str(args.data), str(runs_dir), args.set,
                               unseen) for config, seed in jobs]
        for future in futures:
            result = future.result()
            results[result["config"]].append(result)
            test = result["test"]
            print(f"{result['config']:18s} seed {result['seed']}: test F1 "
                  f"{100 * test['f1']:.2f}, epoch {result['best_epoch']}/{result['epochs']}, "
                  f"{result['minutes']:.1f} min", flush=True)
    ensemble = None
    if args.seeds > 1 and ENSEMBLE_CONFIG in results:
        ensemble = ensemble_row(results[ENSEMBLE_CONFIG], runs_dir, unseen)
        print(f"ensemble of {ENSEMBLE_CONFIG}: test F1 {100 * ensemble['test']['f1']:.2f}",
              flush=True)
    write_table(args, rows, results, command, runs_dir, ensemble, unseen)


def against(reference: Path, other: Path) -> list[dict]:
    """`slotfill compare`'s paired bootstrap of `other` against `reference` on test."""
    from slotfill.analysis.significance import paired_bootstrap, predictions_on

    _, examples, first = predictions_on(reference, "test")
    _, _, second = predictions_on(other, "test")
    return [d.to_dict() for d in paired_bootstrap(examples, first, second)]


def make_unseen_sets(data: Path, runs_dir: Path) -> list[tuple[str, Path]]:
    """The unseen-city test sets (benchmarks/unseen_cities.py), or none when the corpus
    has no city slots."""
    from benchmarks.unseen_cities import city_spans, make_sets
    from slotfill.data.corpus import read_corpus

    test = read_corpus(data, splits=("test",))["test"]
    if not any(city_spans(e.tags) for e in test):
        return []
    return list(make_sets(data, runs_dir / "unseen-cities").items())


def score_unseen(checkpoint: Path, folder: Path) -> dict:
    from benchmarks.unseen_cities import score
    return score(checkpoint, folder)


def write_table(args, rows, results, command: str, runs_dir: Path, ensemble: dict | None,
                unseen: dict[str, str]) -> None:
    import torch

    def column(runs: list[dict], key: str) -> str:
        values = [100 * r["test"][key] for r in runs if key in r["test"]]
        return summarise(values)

    lines = [
        "# Accuracy benchmark", "",
        f"- command: `{command}`",
        f"- date: {date.today().isoformat()}",
        f"- corpus: `{shown_path(args.data)}`; {args.seeds} seeds per config "
        f"(train.seed=1..{args.seeds}), best checkpoint and early stopping on dev only, "
        "scores on test",
        f"- machine: {describe()}; torch {torch.__version__}; {args.jobs} runs in parallel "
        "with 1 thread each",
        f"- runs: `{shown_path(runs_dir)}` (`slotfill compare` puts them side by side)",
        "", "Test scores in percent"
        + (", mean ± standard deviation over seeds." if args.seeds > 1 else "."), "",
        "| config | tagger | slot F1 | target | intent acc. | overall acc. | sentence acc. "
        "| best epoch / epochs | minutes per run (training + dev) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    on_atis = str(args.data) != "bundled"  # the targets and published numbers are ATIS's
    for config, label, target in rows:
        target = target if on_atis else None
        runs = results[config]
        f1 = [100 * r["test"]["f1"] for r in runs]
        met = "" if target is None else (f">= {target} " + (
            "(met)" if f1 and statistics.mean(f1) >= target else "(missed)"))
        epochs = f"{statistics.mean(r['best_epoch'] for r in runs):.0f} / " \
                 f"{statistics.mean(r['epochs'] for r in runs):.0f}"
        lines.append(
            f"| `configs/{config}` | {label} | {summarise(f1)} | {met} | "
            f"{column(runs, 'intent_accuracy')} | {column(runs, 'overall_accuracy')} | "
            f"{column(runs, 'sentence_accuracy')} | {epochs} | "
            f"{statistics.mean(r['minutes'] for r in runs):.1f} |")
    if ensemble is not None:
        test, target = ensemble["test"], ENSEMBLE_TARGET if on_atis else None
        pct = lambda key: f"{100 * test[key]:.2f}" if key in test else ""  # noqa: E731
        met = "" if target is None else f">= {target} " + (
            "(met)" if 100 * test["f1"] >= target else "(missed)")
        lines.append(
            f"| `configs/{ENSEMBLE_CONFIG}` x {ensemble['members']} | ensemble of its "
            f"{ensemble['members']} seeds (`slotfill ensemble`) | {pct('f1')} | {met} | "
            f"{pct('intent_accuracy')} | {pct('overall_accuracy')} | "
            f"{pct('sentence_accuracy')} |  |  |")
        lines += ["", "The ensemble minus its seed-1 member on test, paired bootstrap over "
                  "the test utterances (`slotfill compare`): " + "; ".join(
                      f"{d['metric'].replace('_', ' ')} {100 * d['delta']:+.2f} "
                      f"({100 * d['low']:+.2f} to {100 * d['high']:+.2f}, p = {d['p']:.3f})"
                      for d in ensemble["against_seed1"]) + "."]
    if unseen:
        lines += ["", "Cities the corpus never had (`benchmarks/unseen_cities.py`): its test "
                  "utterances with a city slot, each city replaced by a city that no "
                  "utterance of the corpus mentions; `listed`: cities of the shipped "
                  "`city_name` gazetteer, `unlisted`: towns in no shipped list. Slot F1 over "
                  "the set, and city recall: replaced cities tagged exactly.", "",
                  "| config | " + " | ".join(f"{name} F1 | {name} city recall"
                                              for name in unseen) + " |",
                  "|---|" + "---:|" * (2 * len(unseen))]
        rows_unseen = [(f"`configs/{config}`", results[config]) for config, _, _ in rows]
        if ensemble is not None:
            rows_unseen.append((f"`configs/{ENSEMBLE_CONFIG}` x {ensemble['members']}",
                                [ensemble]))
        for label, runs in rows_unseen:
            cells = [summarise([100 * r["unseen"][name][key] for r in runs])
                     for name in unseen for key in ("f1", "city_recall")]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if ENSEMBLE_CONFIG in results:
        lines += ["", f"`configs/{ENSEMBLE_CONFIG}` on the mission's examples "
                  "(`slotfill predict`):", "",
                  "| model | " + " | ".join(f"`{text}`" for text in MISSION) + " |",
                  "|---|" + "---|" * len(MISSION)]
        tagged = [(f"seed {r['seed']}", r["mission"]) for r in results[ENSEMBLE_CONFIG]]
        if ensemble is not None:
            tagged.append((f"ensemble of {ensemble['members']}", ensemble["mission"]))
        lines += [f"| {name} | " + " | ".join(slots) + " |" for name, slots in tagged]
    if on_atis:
        lines += ["", "Published ATIS test results (same 4,478/500/893 split unless noted):", "",
                  "| system | slot F1 | intent acc. | overall acc. |", "|---|---:|---:|---:|",
                  *[f"| {name} | {f1} | {intent} | {overall} |"
                    for name, f1, intent, overall in PUBLISHED]]
    lines.append("")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
