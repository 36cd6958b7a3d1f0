"""Deterministic generator of the sample corpora shipped in `data/` (English, templates in
sample_corpus_en.py) and `data/zh/` (Chinese, sample_corpus_zh.py).

Regenerate a shipped corpus (byte-identical on any OS and Python >= 3.10) from the
repository root with (`--output` defaults to `data`, or `data/zh` for Chinese):

    python -m slotfill.data.sample_corpus --output data
    python -m slotfill.data.sample_corpus --language zh
"""

from __future__ import annotations

import argparse
from pathlib import Path

from slotfill.data import sample_corpus_en as en
from slotfill.data import sample_corpus_zh as zh
from slotfill.data.sample_corpus_en import Example

SEED = 2026
MIN_TOKENS = 3


def generate(seed: int = SEED, language: str = "en") -> dict[str, list[Example]]:
    """Train, valid and test examples as (tokens, tags, intent), in English or Chinese
    (`zh`).

    Train never mentions the held-out cities; valid/test use them for ~10% of city
    mentions. Utterance texts are unique across the whole corpus.
    """
    composer_class, sizes, max_tokens = _language(language)
    rng = en.Rng(seed)
    seen: set[str] = set()  # membership tests only, never iterated
    splits: dict[str, list[Example]] = {}
    for split, size in sizes:
        composer = composer_class(rng, heldout=split != "train")
        examples: list[Example] = []
        while len(examples) < size:
            tokens, tags, intent = composer.utterance()
            text = " ".join(tokens)
            if MIN_TOKENS <= len(tokens) <= max_tokens and text not in seen:
                seen.add(text)
                examples.append((tokens, tags, intent))
        splits[split] = examples
    return splits


def _language(language: str) -> tuple[type, tuple, int]:
    """The composer, split sizes and longest utterance of a language."""
    if language == "zh":
        return zh.ZhComposer, zh.SPLIT_SIZES, zh.MAX_TOKENS
    if language != "en":
        raise ValueError(f"no sample corpus in {language!r}; there are en and zh")
    return en.Composer, en.SPLIT_SIZES, en.MAX_TOKENS


def write_corpus(directory: Path, seed: int = SEED, language: str = "en") -> None:
    """Write `<directory>/{train,valid,test}/{seq.in,seq.out,label}`."""
    for split, examples in generate(seed, language).items():
        folder = Path(directory) / split
        folder.mkdir(parents=True, exist_ok=True)
        columns = {"seq.in": [" ".join(tokens) for tokens, _, _ in examples],
                   "seq.out": [" ".join(tags) for _, tags, _ in examples],
                   "label": [intent for _, _, intent in examples]}
        for name, lines in columns.items():
            with open(folder / name, "w", encoding="utf-8", newline="\n") as handle:
                handle.write("".join(line + "\n" for line in lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m slotfill.data.sample_corpus",
                                     description="Regenerate the ATIS-style sample corpus.")
    parser.add_argument("--language", choices=("en", "zh"), default="en",
                        help="en (data/) or zh (Chinese, data/zh/)")
    parser.add_argument("--output", type=Path, default=None,
                        help="output directory (default: ./data, or ./data/zh for zh)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    args = parser.parse_args(argv)
    output = args.output or Path("data" if args.language == "en" else "data/zh")
    write_corpus(output, args.seed, args.language)
    sizes = _language(args.language)[1]
    print(f"wrote {', '.join(f'{s}: {n}' for s, n in sizes)} utterances to {output}")


if __name__ == "__main__":
    main()
