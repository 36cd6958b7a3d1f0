"""The Chinese sample corpus: `configs/bilstm-zh.yaml` as shipped, and its examples.

    python benchmarks/chinese.py [--set KEY=VALUE ...] [--output FILE]

Trains `slotfill train bilstm-zh` (one seed, one thread, through slotfill's Python API)
into a temporary run directory, then tags the example utterances with its best.pt as
`slotfill predict` does. Writes the dev curve, the test scores of best.pt and the
predicted slots to a markdown file (default benchmarks/results/bilstm-zh.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import command_line, describe, load_average  # noqa: E402
from slotfill.config import load_config  # noqa: E402
from slotfill.data.corpus import read_corpus  # noqa: E402
from slotfill.serving.predict import Predictor  # noqa: E402
from slotfill.training.run import train  # noqa: E402

EXAMPLES = ("我想11月2日到达台北", "我想11月2日从台北出发", "我想11月2日离开台北")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides (a smoke run; not the README's)")
    parser.add_argument("--output", type=Path,
                        default=ROOT / "benchmarks/results/bilstm-zh.md")
    args = parser.parse_args()
    cfg = load_config("bilstm-zh", ["train.threads=1", *args.set])
    corpus = read_corpus(ROOT / "data" / "zh")
    with tempfile.TemporaryDirectory() as tmp:
        result = train(cfg, Path(tmp))
        predictions = Predictor(Path(tmp) / "best.pt").predict(list(EXAMPLES))
    history, best, test = result.history, result.best_epoch, result.test
    shown = sorted({1, 2, 4, 8, best, len(history)} & set(range(1, len(history) + 1)))
    lines = [
        "# The Chinese sample corpus: `configs/bilstm-zh.yaml`", "",
        f"- command: `{command_line()}`",
        f"- date: {date.today().isoformat()}",
        f"- machine: {describe()}; torch {torch.__version__}, 1 thread; load average "
        f"{load_average()} after the run",
        f"- corpus: `data/zh/` ({len(corpus['train']):,} / {len(corpus['valid']):,} / "
        f"{len(corpus['test']):,} utterances); one seed "
        f"(train.seed={cfg.train.seed}); `slotfill train bilstm-zh` trains the same", "",
        "| epoch | train loss | dev P | dev R | dev F1 |", "|---:|---:|---:|---:|---:|"]
    for epoch in shown:
        r = history[epoch - 1]
        label = f"{epoch} (best)" if epoch == best else (
            f"{epoch} (last)" if epoch == len(history) else str(epoch))
        lines.append(f"| {label} | {r.train_loss:.4f} | {100 * r.dev_precision:.2f} | "
                     f"{100 * r.dev_recall:.2f} | {100 * r.dev_f1:.2f} |")
    lines += ["", f"best.pt (epoch {best}): dev F1 {100 * result.dev['f1']:.2f}, test "
              f"precision {100 * test['precision']:.2f}, recall {100 * test['recall']:.2f}, "
              f"**F1 {100 * test['f1']:.2f}**, sentence accuracy "
              f"{100 * test['sentence_accuracy']:.2f}.", "",
              "`slotfill predict --model RUN_DIR TEXT`:", "", "| text | slots |", "|---|---|"]
    for text, found in zip(EXAMPLES, predictions):
        slots = ", ".join(f"{s['slot']} = {s['value']}" for s in found["slots"]) or "(none)"
        lines.append(f"| {text} | {slots} |")
    args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
