"""Corpus analysis for `slotfill data check` and the warnings training prints.

Hard problems (the readers find them; training refuses the corpus): token/tag count
mismatches, unreadable or non-UTF-8 files, missing or empty splits, label files with a
different line count, malformed JSON or YAML, span offsets that are not integers.
Repairs (warnings, errors with data.strict: data/annotation.py): spans that cut
a word, overlap, lie outside their text or are empty, labels that are no slot names.
Soft problems (warnings; training goes on): transitions the corpus's tag scheme forbids,
utterances shared by train and dev/test, tags or intents found only in dev/test, blank
lines. The report names the tag scheme (data/bio.py), detected from the training tags.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from slotfill.data.bio import SCHEMES, detect_scheme, extract_spans, transition_problems
from slotfill.data.corpus import Corpus, Example, ReadOptions, scan_corpus

_EXAMPLES_SHOWN = 5  # per kind of warning


@dataclass
class SplitStats:
    utterances: int
    tokens: int
    tag_counts: Counter  # tag -> tokens
    slot_counts: Counter  # slot type -> spans
    intent_counts: Counter  # intent -> utterances

    def to_dict(self) -> dict:
        return {"utterances": self.utterances, "tokens": self.tokens,
                "tags": dict(self.tag_counts), "slots": dict(self.slot_counts),
                "intents": dict(self.intent_counts)}


@dataclass
class DataReport:
    path: Path
    format: str
    splits: dict[str, SplitStats]
    oov_rate: dict[str, float]  # split -> share of tokens not in train (dev/test)
    scheme: str = "bio"  # a name in bio.SCHEMES
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"path": str(self.path), "format": self.format, "scheme": self.scheme,
                "splits": {k: v.to_dict() for k, v in self.splits.items()},
                "oov_rate": self.oov_rate, "errors": self.errors, "warnings": self.warnings}


def check_corpus(path: str | Path, fmt: str = "auto",
                 options: ReadOptions = ReadOptions()) -> DataReport:
    corpus = scan_corpus(path, fmt, options=options)
    stats = {name: split_stats(examples) for name, examples in corpus.splits.items()}
    return DataReport(corpus.path, corpus.format, stats, oov_rates(corpus),
                      scheme_of(corpus), corpus.problems,
                      corpus.warnings + soft_problems(corpus))


def scheme_of(corpus: Corpus) -> str:
    """The corpus's tag scheme, as its training tags show it (all tags without train)."""
    examples = corpus.splits.get("train") or [e for s in corpus.splits.values() for e in s]
    return detect_scheme(e.tags for e in examples)


def split_stats(examples: list[Example]) -> SplitStats:
    return SplitStats(
        utterances=len(examples), tokens=sum(len(e.tokens) for e in examples),
        tag_counts=Counter(t for e in examples for t in e.tags),
        slot_counts=Counter(kind for e in examples for kind, _, _ in extract_spans(e.tags)),
        intent_counts=Counter(e.intent for e in examples if e.intent is not None))


def oov_rates(corpus: Corpus) -> dict[str, float]:
    known = {w for e in corpus.splits.get("train", []) for w in e.tokens}
    rates = {}
    for name in ("valid", "test"):
        tokens = [w for e in corpus.splits.get(name, []) for w in e.tokens]
        if known and tokens:
            rates[name] = sum(w not in known for w in tokens) / len(tokens)
    return rates


def soft_problems(corpus: Corpus) -> list[str]:
    """Warnings about a readable corpus: see the module docstring."""
    warnings: list[str] = []
    scheme = scheme_of(corpus)
    for name, examples in corpus.splits.items():
        bad = [f"{e.source or name}: {problem}" for e in examples
               for problem in transition_problems(e.tags, scheme)]
        warnings += _summarise(bad, f"{len(bad)} invalid {SCHEMES[scheme]} transitions in "
                                    f"{name}")
    train = corpus.splits.get("train", [])
    seen_text = {e.tokens for e in train}
    seen_tags = {t for e in train for t in e.tags}
    seen_intents = {e.intent for e in train}
    for name in ("valid", "test"):
        examples = corpus.splits.get(name, [])
        if not train or not examples:
            continue
        shared = [f"{e.source or name}: {' '.join(e.tokens)}" for e in examples
                  if e.tokens in seen_text]
        warnings += _summarise(shared, f"{len(shared)} utterances of {name} also occur in "
                                       "train")
        tags = sorted({t for e in examples for t in e.tags} - seen_tags)
        if tags:
            warnings.append(f"tags only in {name}, never in train (they count as missed): "
                            + ", ".join(tags))
        intents = sorted({e.intent for e in examples if e.intent} - seen_intents)
        if intents:
            warnings.append(f"intents only in {name}, never in train: " + ", ".join(intents))
    return warnings


def _summarise(items: list[str], headline: str) -> list[str]:
    if not items:
        return []
    shown = "; ".join(items[:_EXAMPLES_SHOWN])
    more = f"; ... {len(items) - _EXAMPLES_SHOWN} more" if len(items) > _EXAMPLES_SHOWN else ""
    return [f"{headline}: {shown}{more}"]
