"""Model options screened on the dev split, and what the refinement pass costs.

    python benchmarks/dev_screen.py [--data DIR] [--runs-dir DIR] [--jobs 2]
                                    [--only NAME ...] [--cost] [--set KEY=VALUE ...]
                                    [--output benchmarks/results/accuracy-dev-screen.md]

Each variant (VARIANTS: a shipped config, overrides, seeds) trains through slotfill's API
with dev-based early stopping and checkpoint selection; the table gives its dev scores
only (slot F1, intent accuracy as a set and as the exact string, overall accuracy), the
basis for choosing options; test is never read here. A finished run found in --runs-dir
is reused, so the screen can be run a few variants at a time (--only) and the table
written at the end from all of them. `--cost` also times the refinement pass: for each
encoder of COST_CONFIGS, one training epoch and tagging the test split, with one thread,
without and with model.refine, one after the other (untrained weights: the time does not
depend on them).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import DEFAULT_ATIS  # noqa: E402
from benchmarks.machine import command_line, describe, load_average, shown_path  # noqa: E402

SCREEN = ["train.epochs=30"]  # shorter than the configs' 50: a screen, not the result
ONE_PASS = "model.refine=false"  # explicit, so the screen does not depend on joint.yaml
VARIANTS = [  # (name, config file, overrides, seeds)
    ("joint", "joint.yaml", [ONE_PASS], (1, 2)),
    ("joint multi-intent", "joint.yaml", [ONE_PASS, "model.multi_intent=true"], (1,)),
    ("joint slot-gated intent", "joint.yaml", [ONE_PASS, "model.intent_reads_slots=true"],
     (1,)),
    ("joint refine", "joint.yaml", ["model.refine=true"], (1, 2)),
    ("joint refine multi-intent", "joint.yaml", ["model.refine=true",
                                                 "model.multi_intent=true"], (1,)),
    ("joint refine slot-gated intent", "joint.yaml", ["model.refine=true",
                                                      "model.intent_reads_slots=true"], (1,)),
    ("bilstm", "bilstm.yaml", [], (1,)),
    ("bilstm refine", "bilstm.yaml", ["model.refine=true"], (1,)),
    ("rnn", "rnn.yaml", [], (1,)),
    ("rnn refine", "rnn.yaml", ["model.refine=true"], (1,)),
]
COST_CONFIGS = ["rnn.yaml", "jordan.yaml", "lstm.yaml", "gru.yaml", "bilstm.yaml",
                "bilstm-crf.yaml", "joint.yaml", "seq2seq.yaml"]


def run_name(name: str, seed: int) -> str:
    return f"{name.replace(' ', '-')}-seed{seed}"


def run_one(name: str, config: str, overrides: list[str], seed: int, data: str,
            runs_dir: str, extra: list[str]) -> dict:
    """Train one variant and seed in this worker process (or reuse its finished run)."""
    from slotfill.config import load_config
    from slotfill.training.run import train
    from slotfill.training.rundir import RunDir

    run_dir = Path(runs_dir) / run_name(name, seed)
    if RunDir(run_dir).read_status().get("state") != "finished":
        cfg = load_config(ROOT / "configs" / config, [
            f"data.path={data}", f"train.seed={seed}", "train.threads=1", "train.report=false",
            *SCREEN, *overrides, *extra])
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        train(cfg, run_dir)
    run = RunDir(run_dir).summary()
    return {"name": name, "seed": seed, "dev": run["dev"], "best_epoch": run["best_epoch"],
            "epochs": run["epochs"], "seconds": run["seconds"]}


def refine_cost(data: Path, config: str) -> dict:
    """Seconds of one training epoch (the faster of two) and of tagging the test split,
    without and with model.refine, one thread."""
    import torch

    from slotfill.analysis.evaluate import SplitScorer
    from slotfill.config import load_config
    from slotfill.training.prepare import prepare
    from slotfill.training.trainer import Trainer

    out = {}
    for refine in (False, True):
        cfg = load_config(ROOT / "configs" / config, [
            f"data.path={data}", "train.threads=1", "train.device=cpu",
            f"model.refine={str(refine).lower()}"])
        prepared = prepare(cfg)
        trainer = Trainer(cfg, prepared)
        epoch = min(trainer.train_epoch().seconds for _ in range(2))
        torch.set_num_threads(1)
        scorer = SplitScorer(prepared.corpus["test"], prepared.vocabs, "cpu")
        model = trainer.model.eval()
        scorer.predict(model)  # warm-up
        started = time.perf_counter()
        scorer.predict(model)
        out[refine] = {"epoch": epoch, "tagging": time.perf_counter() - started,
                       "utterances": len(prepared.corpus["test"])}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_ATIS)
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (1 thread each)")
    parser.add_argument("--only", nargs="*", help="variant names to train (default: all)")
    parser.add_argument("--cost", action="store_true", help="also time the refinement pass")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides for every run (e.g. train.epochs=1 for a smoke test)")
    parser.add_argument("--runs-dir", type=Path, help="where runs go (default: a temp dir)")
    parser.add_argument("--output", type=Path,
                        default=ROOT / "benchmarks/results/accuracy-dev-screen.md")
    args = parser.parse_args()
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="slotfill-screen-"))
    variants = [v for v in VARIANTS if not args.only or v[0] in args.only]
    jobs = [(name, config, overrides, seed) for name, config, overrides, seeds in variants
            for seed in seeds]
    print(f"{len(jobs)} runs, {args.jobs} at a time, into {runs_dir}", flush=True)
    results = []
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_one, *job, str(args.data), str(runs_dir), args.set)
                   for job in jobs]
        for future in futures:
            result = future.result()
            results.append(result)
            dev = result["dev"]
            print(f"{result['name']:28s} seed {result['seed']}: dev F1 {100 * dev['f1']:.2f}"
                  + (f", intent {100 * dev['intent_accuracy']:.2f}"
                     if "intent_accuracy" in dev else ""), flush=True)
    costs = {}
    if args.cost:
        for config in COST_CONFIGS:
            costs[config] = refine_cost(args.data, config)
            plain, refined = costs[config][False], costs[config][True]
            print(f"{config:16s} epoch {plain['epoch']:.1f} s -> {refined['epoch']:.1f} s; "
                  f"tagging {plain['tagging']:.2f} s -> {refined['tagging']:.2f} s", flush=True)
    write_table(args, variants, results, costs, runs_dir)


def write_table(args, variants, results, costs, runs_dir: Path) -> None:
    import torch

    def pct(scores: dict, key: str) -> str:
        return f"{100 * scores[key]:.2f}" if key in scores else ""
    overrides = {name: (config, extra) for name, config, extra, _ in variants}
    sentences = results[0]["dev"]["sentences"] if results else 0
    lines = [
        "# Model options on the dev split, and the cost of the refinement pass", "",
        f"- command: `{command_line()}`",
        f"- date: {date.today().isoformat()}",
        f"- corpus: `{shown_path(args.data)}`; every run with `{' '.join(SCREEN + args.set)}`"
        " (a screen: the shipped configs train up to 50 epochs); best checkpoint and early "
        "stopping on dev; **dev scores only**: options are chosen on these, test is not read",
        f"- machine: {describe()}; torch {torch.__version__}; {args.jobs} runs in parallel "
        "with 1 thread each",
        f"- runs: `{shown_path(runs_dir)}`", "",
        f"Dev scores in percent ({sentences} utterances: one intent error is "
        f"{100 / sentences:.2f} points). Intent "
        "accuracy counts a predicted label right when it names the gold set of intents "
        "(`set`) or only when it is the same string (`string`).", "",
        "| variant | config + overrides | seed | dev F1 | dev intent (set) | dev intent "
        "(string) | dev overall | best epoch / epochs | minutes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        config, extra = overrides[r["name"]]
        dev = r["dev"]
        lines.append(
            f"| {r['name']} | `{Path(config).stem}{''.join(' ' + o for o in extra)}` | "
            f"{r['seed']} | {pct(dev, 'f1')} | {pct(dev, 'intent_accuracy')} | "
            f"{pct(dev, 'intent_string_accuracy')} | {pct(dev, 'overall_accuracy')} | "
            f"{r['best_epoch']} / {r['epochs']} | {r['seconds'] / 60:.1f} |")
    if costs:
        lines += ["", "The refinement pass (`model.refine=true`): seconds of one training "
                  "epoch over the training split (the faster of two) and of tagging the "
                  f"test split ({next(iter(costs.values()))[False]['utterances']} "
                  "utterances, batches of 256), one thread, each config as shipped "
                  f"otherwise; load average {load_average()} at the end.", "",
                  "| config | epoch (s) | epoch, refine (s) | ratio | tagging (s) | "
                  "tagging, refine (s) | ratio |", "|---|---:|---:|---:|---:|---:|---:|"]
        for config, cost in costs.items():
            plain, refined = cost[False], cost[True]
            lines.append(
                f"| `configs/{config}` | {plain['epoch']:.1f} | {refined['epoch']:.1f} | "
                f"{refined['epoch'] / plain['epoch']:.2f} | {plain['tagging']:.2f} | "
                f"{refined['tagging']:.2f} | {refined['tagging'] / plain['tagging']:.2f} |")
    lines.append("")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
