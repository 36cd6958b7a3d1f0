"""Accuracy benchmark: shipped configs x seeds on an ATIS-format corpus.

    python benchmarks/accuracy.py [--data DIR] [--seeds 3] [--jobs 2] [--configs a b ...]
                                  [--output benchmarks/results/accuracy.md]

Each row (a config, with overrides for rows that show a shipped config as it was) and
seed trains through slotfill's public API (`slotfill.training.run.train`) with dev-based
early stopping and checkpoint selection, then its best.pt is scored on test. The table
gives mean +- standard deviation over seeds of test slot F1, intent accuracy (as a set
and as the exact string), overall accuracy (every slot and the intent right) and
sentence accuracy (every slot right), epochs and minutes of training and dev evaluation
per run, each score beside its target where the project set one, next to published
results. With two seeds or more, the seeds of each row in ENSEMBLES also form an
ensemble (`slotfill ensemble`), scored as one more row, and the paired bootstrap compares
CANDIDATE with BEST seed by seed and ensemble to ensemble. Every run (and ensemble) is also
scored on two test sets of cities the corpus never had (benchmarks/unseen_cities.py
says how they are made from its test split). Runs go to --runs-dir (kept, so `slotfill
compare` can show them; a finished run found there is reused, so an interrupted
benchmark continues); the table to --output.
"""

from __future__ import annotations

import argparse
import os
from typing import NamedTuple
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

class Row(NamedTuple):
    name: str  # its runs are NAME-seedN
    config: str  # file in configs/
    label: str
    targets: tuple = ()  # (slot F1, intent, overall) from the accuracy issues, or fewer
    overrides: tuple = ()


# A slot F1 target stands on every row of its architecture, with and without the CRF head.
SINGLE, ENSEMBLE = (96.0, 97.5, 87.5), (96.3, 97.8, 88.0)  # single model / ensemble
ROWS = [
    Row("rnn", "rnn.yaml", "Elman RNN, window 3", (95.0,)),
    Row("elman-crf", "elman-crf.yaml", "Elman RNN, window 3, char CNN, gazetteers, CRF",
        (95.0,)),
    Row("jordan", "jordan.yaml", "Jordan RNN, window 3", (94.3,)),
    Row("jordan-crf", "jordan-crf.yaml",
        "Jordan RNN, window 3, char CNN, gazetteers, CRF, substitution", (94.3,)),
    Row("lstm", "lstm.yaml", "LSTM", (94.8,)),
    Row("lstm-crf", "lstm-crf.yaml", "LSTM, char CNN, CRF", (94.8,)),
    Row("gru", "gru.yaml", "GRU"),
    Row("birnn", "birnn.yaml", "BiRNN (Elman)"),
    Row("bilstm", "bilstm.yaml", "BiLSTM", (95.3,)),
    Row("bilstm-crf", "bilstm-crf.yaml", "BiLSTM, CRF", (95.3,)),
    Row("seq2seq", "seq2seq.yaml", "encoder-decoder with attention, joint intent"),
    Row("joint", "joint.yaml", "BiLSTM, char CNN, gazetteers, CRF, joint intent, "
        "substitution", SINGLE),
    Row("joint-refine", "joint.yaml", "the same with the refinement pass", SINGLE,
        ("model.refine=true",)),
]

BEST = "joint"  # the best single config (chosen on dev): its seeds form the ensemble row
CANDIDATE = "joint-refine"  # the new option, compared with BEST by paired bootstrap
ENSEMBLES = (BEST, CANDIDATE)  # rows whose seeds form an ensemble
MISSION = ("arrive Taipei on Nov 2nd", "leave Taipei on Nov 2nd")  # tagged by BEST

PUBLISHED = [  # ATIS test slot F1 (and intent / overall accuracy where reported)
    ("Mesnil et al. 2015, Elman RNN (older 4,978-utterance split)", "94.98", "", ""),
    ("Mesnil et al. 2015, Jordan RNN (older split)", "94.29", "", ""),
    ("Mesnil et al. 2015, hybrid RNN (older split)", "95.06", "", ""),
    ("Yao et al. 2014, LSTM (older split)", "94.85", "", ""),
    ("Yao et al. 2014, deep LSTM (older split)", "95.08", "", ""),
    ("Goo et al. 2018, slot-gated", "95.2", "94.1", "82.6"),
    ("Qin et al. 2019, Stack-Propagation", "95.9", "96.9", "86.5"),
    ("Wu et al. 2020, SlotRefine (two-pass refinement)", "96.22", "", ""),
    ("Qin et al. 2021, DCA-Net (OpenSLU rerun, GloVe)", "95.9", "97.3", "87.6"),
    ("Chen et al. 2019, Joint BERT (pretrained)", "96.1", "97.5", "88.2"),
]
ANCHORS = ("Stack-Propagation", "SlotRefine", "DCA-Net", "Joint BERT")  # BEST set beside them


def run_one(row: Row, seed: int, data: str, runs_dir: str, overrides: list[str],
            unseen: dict[str, str]) -> dict:
    """Train one (row, seed) in this worker process, or reuse its finished run in
    runs_dir (so an interrupted benchmark continues); returns its scores, on test and on
    the `unseen` city test sets."""
    from slotfill.config import load_config
    from slotfill.training.rundir import RunDir

    run_dir = Path(runs_dir) / f"{row.name}-seed{seed}"
    train_once(run_dir, lambda: load_config(ROOT / "configs" / row.config, [
        f"data.path={data}", f"train.seed={seed}", "train.threads=1", *row.overrides,
        *overrides]))
    run = RunDir(run_dir).summary()
    return {"row": row.name, "seed": seed, "run": str(run_dir), "test": run["test"],
            "dev": run["dev"],
            "best_epoch": run["best_epoch"], "epochs": run["epochs"],
            "minutes": run["seconds"] / 60,
            "unseen": {name: score_unseen(run_dir / "best.pt", Path(folder))
                       for name, folder in unseen.items()},
            "mission": tag_mission(run_dir / "best.pt")}


def train_once(run_dir: Path, config) -> None:
    """Train `config()` into `run_dir` unless a finished run is there (so that an
    interrupted benchmark continues); an unfinished one is started again."""
    from slotfill.training.run import train
    from slotfill.training.rundir import RunDir

    if RunDir(run_dir).read_status().get("state") == "finished":
        return
    cfg = config()
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    train(cfg, run_dir)


def tag_mission(checkpoint: Path) -> list[str]:
    """The MISSION utterances' slots, as `value = slot` strings."""
    from slotfill.serving.predict import Predictor
    return ["; ".join(f"{s['value']} = {s['slot']}" for s in result["slots"]) or "(none)"
            for result in Predictor(checkpoint).predict(list(MISSION))]


def ensemble_row(name: str, runs: list[dict], runs_dir: Path, unseen: dict[str, str]) -> dict:
    """The ensemble of `runs` (one row's seeds), built once into runs_dir."""
    from slotfill.training.ensemble import build_ensemble
    from slotfill.training.rundir import RunDir

    out = runs_dir / f"{name}-ensemble"
    built = RunDir(out).read_metrics() if RunDir(out).read_status().get("state") == \
        "finished" else None
    if built is None or len(built.get("members", [])) != len(runs):  # (of fewer seeds)
        build_ensemble([r["run"] for r in runs], out, force=True)
    metrics = RunDir(out).read_metrics()
    return {"run": str(out), "test": metrics["test"], "dev": metrics["dev"],
            "members": len(runs),
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
    parser.add_argument("--configs", nargs="*",
                        help="config files or row names (default: every row)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides for every run (e.g. train.epochs=1 for a smoke test)")
    parser.add_argument("--runs-dir", type=Path, help="where runs go (default: a temp dir)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/accuracy.md")
    args = parser.parse_args()
    rows = [r for r in ROWS if not args.configs or r.config in args.configs
            or r.name in args.configs]
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="slotfill-accuracy-"))
    command = command_line()
    unseen = {name: str(folder) for name, folder in make_unseen_sets(args.data, runs_dir)}
    jobs = [(row, seed) for row in rows for seed in range(1, args.seeds + 1)]
    print(f"{len(jobs)} runs, {args.jobs} at a time, into {runs_dir}", flush=True)
    results: dict[str, list[dict]] = {row.name: [] for row in rows}
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_one, row, seed, str(args.data), str(runs_dir), args.set,
                               unseen) for row, seed in jobs]
        for future in futures:
            result = future.result()
            results[result["row"]].append(result)
            test = result["test"]
            print(f"{result['row']:18s} seed {result['seed']}: test F1 "
                  f"{100 * test['f1']:.2f}, epoch {result['best_epoch']}/{result['epochs']}, "
                  f"{result['minutes']:.1f} min", flush=True)
    ensembles = {}
    if args.seeds > 1:
        for name in (n for n in ENSEMBLES if n in results):
            ensembles[name] = ensemble_row(name, results[name], runs_dir, unseen)
            print(f"ensemble of {name}: test F1 {100 * ensembles[name]['test']['f1']:.2f}",
                  flush=True)
    versus = candidate_against_best(results, ensembles)
    write_table(args, rows, results, command, runs_dir, ensembles, versus, unseen)


def candidate_against_best(results: dict[str, list[dict]], ensembles: dict[str, dict]
                           ) -> list[tuple[str, list[dict]]]:
    """The paired bootstrap of CANDIDATE against BEST on test, seed by seed and ensemble
    to ensemble (where both were run)."""
    if BEST not in results or CANDIDATE not in results:
        return []
    pairs = [(f"seed {new['seed']}", Path(old["run"]), Path(new["run"]))
             for old, new in zip(results[BEST], results[CANDIDATE])]
    if BEST in ensembles and CANDIDATE in ensembles:
        pairs.append(("ensembles", Path(ensembles[BEST]["run"]),
                      Path(ensembles[CANDIDATE]["run"])))
    return [(name, against(old / "best.pt", new / "best.pt")) for name, old, new in pairs]


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


def target_cell(value: float | None, target: float | None) -> str:
    """`>= 96.0, missed by 0.39` / `>= 96.0, met by 0.12`, or empty without a target."""
    if target is None or value is None:
        return ""
    gap = value - target
    return f">= {target}, " + (f"met (+{gap:.2f})" if gap >= 0 else f"missed by {-gap:.2f}")


def anchor_gaps(label: str, runs: list[dict], ensemble: dict | None) -> list[str]:
    """BEST's mean over seeds (and its ensemble) minus each of the ANCHORS' published
    scores, in points, where they publish one."""
    keys = ("f1", "intent_accuracy", "overall_accuracy")
    models = [("mean of seeds", {k: statistics.mean(100 * r["test"][k] for r in runs)
                                 for k in keys})]
    if ensemble is not None:
        models.append((f"ensemble of {ensemble['members']}",
                       {k: 100 * ensemble["test"][k] for k in keys}))
    lines = ["", f"{label} minus the published results, in points (+: above them):", "",
             "| system | " + " | ".join(f"{name}: slot F1 | intent | overall"
                                       for name, _ in models) + " |",
             "|---|" + "---:|" * (3 * len(models))]
    for name, *published in PUBLISHED:
        if not any(anchor in name for anchor in ANCHORS):
            continue
        cells = [f"{scores[k] - float(value):+.2f}" if value else ""
                 for _, scores in models for k, value in zip(keys, published)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def write_table(args, rows, results, command: str, runs_dir: Path, ensembles: dict,
                versus: list, unseen: dict[str, str]) -> None:
    import torch

    on_atis = str(args.data) != "bundled"  # the targets and published numbers are ATIS's

    def mean(runs: list[dict], key: str) -> float | None:
        values = [100 * r["test"][key] for r in runs if key in r["test"]]
        return statistics.mean(values) if values else None

    def cells(runs: list[dict], targets: tuple) -> list[str]:
        """Score and target cells: slot F1, target, intent (set), target, intent
        (string), overall, target, sentence."""
        targets = (tuple(targets) + (None,) * 3)[:3] if on_atis else (None,) * 3
        out = []
        for key, target in (("f1", targets[0]), ("intent_accuracy", targets[1]),
                            ("intent_string_accuracy", None),
                            ("overall_accuracy", targets[2]), ("sentence_accuracy", None)):
            out.append(summarise([100 * r["test"][key] for r in runs if key in r["test"]]))
            if key in ("f1", "intent_accuracy", "overall_accuracy"):
                out.append(target_cell(mean(runs, key), target))
        return out

    lines = [
        "# Accuracy benchmark", "",
        f"- command: `{command}`",
        f"- date: {date.today().isoformat()}",
        f"- corpus: `{shown_path(args.data)}`; {args.seeds} seeds per row "
        f"(train.seed=1..{args.seeds}), best checkpoint and early stopping on dev only, "
        "scores on test",
        f"- machine: {describe()}; torch {torch.__version__}; {args.jobs} runs in parallel "
        "with 1 thread each",
        f"- runs: `{shown_path(runs_dir)}` (`slotfill compare` puts them side by side)",
        "", "Test scores in percent"
        + (", mean ± standard deviation over seeds" if args.seeds > 1 else "")
        + "; a target is met or missed by the mean. Intent accuracy counts a prediction "
        "right when it names the gold set of intents (`atis_airfare#atis_flight` is "
        "`atis_flight#atis_airfare`), the ATIS convention; `string` only when it is the "
        "same string. Overall accuracy: every slot and the intent (as a set) right.", "",
        "| config | tagger | slot F1 | target | intent acc. | target | intent acc. (string) "
        "| overall acc. | target | sentence acc. | best epoch / epochs "
        "| minutes per run (training + dev) |",
        "|---|---|---:|---|---:|---|---:|---:|---|---:|---:|---:|"]

    def shown(row: Row) -> str:
        return f"`configs/{row.config}`" + "".join(f" `{o}`" for o in row.overrides)
    by_name = {row.name: row for row in rows}
    for row in rows:
        runs = results[row.name]
        epochs = f"{statistics.mean(r['best_epoch'] for r in runs):.0f} / " \
                 f"{statistics.mean(r['epochs'] for r in runs):.0f}"
        lines.append(f"| {shown(row)} | {row.label} | " + " | ".join(cells(runs, row.targets))
                     + f" | {epochs} | {statistics.mean(r['minutes'] for r in runs):.1f} |")
    for name, ensemble in ensembles.items():
        lines.append(
            f"| {shown(by_name[name])} x {ensemble['members']} | ensemble of its "
            f"{ensemble['members']} seeds (`slotfill ensemble`) | "
            + " | ".join(cells([ensemble], ENSEMBLE)) + " |  |  |")

    choice = [(shown(by_name[n]), results[n]) for n in (BEST, CANDIDATE) if n in results]
    choice += [(f"{shown(by_name[n])} x {e['members']}", [e]) for n, e in ensembles.items()]
    if choice:
        lines += ["", f"Dev scores ({choice[0][1][0]['dev']['sentences']} utterances), on "
                  f"which `{by_name[BEST].config}` was chosen (its `train.select`: the mean of "
                  "slot F1 and intent accuracy, the selection score):", "",
                  "| config | dev slot F1 | dev intent acc. | dev overall acc. | "
                  "selection score |", "|---|---:|---:|---:|---:|"]
        for label, runs in choice:
            values = {k: summarise([100 * r["dev"][k] for r in runs])
                      for k in ("f1", "intent_accuracy", "overall_accuracy")}
            select = summarise([50 * (r["dev"]["f1"] + r["dev"]["intent_accuracy"])
                                for r in runs])
            lines.append(f"| {label} | {values['f1']} | {values['intent_accuracy']} | "
                         f"{values['overall_accuracy']} | {select} |")

    def bootstrap(differences: list[dict]) -> str:
        return "; ".join(f"{d['metric'].replace('_', ' ')} {100 * d['delta']:+.2f} "
                         f"({100 * d['low']:+.2f} to {100 * d['high']:+.2f}, p = {d['p']:.3f})"
                         for d in differences)
    if versus:
        lines += ["", f"`{CANDIDATE}` minus `{BEST}` on test, paired bootstrap over the test "
                  "utterances (`slotfill compare`): difference in points (95% interval, "
                  "p-value of no difference):", ""]
        lines += [f"- {name}: {bootstrap(differences)}" for name, differences in versus]
    for name, ensemble in ensembles.items():
        lines += ["", f"The ensemble of `{name}` minus its seed-1 member on test, paired "
                  "bootstrap over the test utterances (`slotfill compare`): "
                  + bootstrap(ensemble["against_seed1"]) + "."]
    if unseen:
        lines += ["", "Cities the corpus never had (`benchmarks/unseen_cities.py`): its test "
                  "utterances with a city slot, each city replaced by a city that no "
                  "utterance of the corpus mentions; `listed`: cities of the shipped "
                  "`city_name` gazetteer, `unlisted`: towns in no shipped list. Slot F1 over "
                  "the set, and city recall: replaced cities tagged exactly.", "",
                  "| config | " + " | ".join(f"{name} F1 | {name} city recall"
                                              for name in unseen) + " |",
                  "|---|" + "---:|" * (2 * len(unseen))]
        rows_unseen = [(shown(row), results[row.name]) for row in rows]
        rows_unseen += [(f"{shown(by_name[name])} x {e['members']}", [e])
                        for name, e in ensembles.items()]
        for label, runs in rows_unseen:
            cells_unseen = [summarise([100 * r["unseen"][name][key] for r in runs])
                            for name in unseen for key in ("f1", "city_recall")]
            lines.append(f"| {label} | " + " | ".join(cells_unseen) + " |")
    if BEST in results:
        lines += ["", f"{shown(by_name[BEST])} on the mission's examples "
                  "(`slotfill predict`):", "",
                  "| model | " + " | ".join(f"`{text}`" for text in MISSION) + " |",
                  "|---|" + "---|" * len(MISSION)]
        tagged = [(f"seed {r['seed']}", r["mission"]) for r in results[BEST]]
        if BEST in ensembles:
            tagged.append((f"ensemble of {ensembles[BEST]['members']}",
                           ensembles[BEST]["mission"]))
        lines += [f"| {name} | " + " | ".join(slots) + " |" for name, slots in tagged]
    if on_atis:
        lines += ["", "Published ATIS test results (same 4,478/500/893 split unless noted):", "",
                  "| system | slot F1 | intent acc. | overall acc. |", "|---|---:|---:|---:|",
                  *[f"| {name} | {f1} | {intent} | {overall} |"
                    for name, f1, intent, overall in PUBLISHED]]
        if BEST in results:
            lines += anchor_gaps(shown(by_name[BEST]), results[BEST], ensembles.get(BEST))
    lines.append("")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
