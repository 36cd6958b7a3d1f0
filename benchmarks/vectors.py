"""Pretrained vectors benchmark: checkpoint sizes and reading time with model.embeddings.

    python benchmarks/vectors.py [--words 100000] [--epochs 1] [--output FILE]

Writes synthetic GloVe-style text files (random vectors, fixed seed: the sizes depend on
the number of words kept and their dimension, not on the values) holding the bundled
corpus's training words and `--words` others, trains `configs/bilstm.yaml` on the bundled
corpus without vectors and with them at several `model.embeddings_max_words`, and
reports best.pt and last.pt sizes, words found and added, and the seconds to read the
file. Writes a markdown table (default benchmarks/results/vectors.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import command_line, describe  # noqa: E402
from slotfill.config import load_config  # noqa: E402
from slotfill.data.corpus import read_corpus  # noqa: E402
from slotfill.training.prepare import prepare  # noqa: E402
from slotfill.training.run import train  # noqa: E402


def write_glove(path: Path, words: list[str], dim: int) -> None:
    generator = torch.Generator().manual_seed(0)
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, len(words), 10000):
            block = (torch.randn(len(words[start:start + 10000]), dim, generator=generator)
                     * 0.4).tolist()
            for word, vector in zip(words[start:start + 10000], block):
                f.write(word + " " + " ".join(f"{x:.5f}" for x in vector) + "\n")


def measure(work: Path, name: str, overrides: list[str]) -> dict:
    cfg = load_config(ROOT / "configs" / "bilstm.yaml", overrides)
    started = time.perf_counter()
    prepared = prepare(cfg)
    seconds = time.perf_counter() - started
    run = work / name
    run.mkdir()
    result = train(cfg, run, prepared)
    vectors = prepared.summary().get("embeddings", {})
    return {"name": name, "best": (run / "best.pt").stat().st_size,
            "last": (run / "last.pt").stat().st_size, "found": vectors.get("found"),
            "of": vectors.get("of"), "added": vectors.get("added", 0),
            "prepare": seconds, "dev": result.dev["f1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=100000,
                        help="words in each synthetic file besides the corpus's")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/vectors.md")
    args = parser.parse_args()
    base = ["data.path=bundled", f"train.epochs={args.epochs}", "train.threads=1",
            "train.device=cpu"]
    vocabulary = sorted({w for e in read_corpus("bundled")["train"] for w in e.tokens})
    words = [f"word{i}" for i in range(args.words // 2)] + vocabulary + [
        f"other{i}" for i in range(args.words - args.words // 2)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows.append(measure(work, "no vectors", base))
        for dim, keep in ((100, 0), (100, 20000), (100, 50000), (300, 20000)):
            path = work / f"glove.{dim}d.txt"
            if not path.exists():
                write_glove(path, words, dim)
            name = f"{dim}-d vectors, embeddings_max_words={keep}"
            rows.append(measure(work, name, base + [
                f"model.embeddings={path}", f"model.embedding_dim={dim}",
                f"model.embeddings_max_words={keep}"]))
            rows[-1]["file"] = path.stat().st_size
    mb = lambda n: f"{n / 1e6:.1f}"  # noqa: E731
    lines = ["# Pretrained vectors: checkpoint sizes", "",
             f"- command: `{command_line()}`", f"- date: {date.today().isoformat()}",
             f"- machine: {describe()}; torch {torch.__version__}",
             f"- `configs/bilstm.yaml` (hidden 200, BiLSTM) on the bundled corpus, "
             f"{args.epochs} epoch(s); synthetic GloVe text files of {len(words):,} words "
             "(the corpus's training words among them); `prepare` = reading the corpus and "
             "the vectors file", "",
             "| run | vectors file (MB) | words found | words added | best.pt (MB) | "
             "last.pt (MB) | prepare (s) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        found = f"{r['found']} of {r['of']}" if r["found"] is not None else ""
        lines.append(f"| {r['name']} | {mb(r['file']) if 'file' in r else ''} | {found} | "
                     f"{r['added']:,} | {mb(r['best'])} | {mb(r['last'])} | "
                     f"{r['prepare']:.1f} |")
    text = "\n".join(lines) + "\n"
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
