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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from slotfill.data.bio import SCHEMES, detect_scheme, extract_spans, transition_problems
from slotfill.data.compact import ExampleArray, compact, tag_sequences
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
    splits = [corpus.splits["train"]] if corpus.splits.get("train") else \
        list(corpus.splits.values())
    counted: Counter = Counter()
    for examples in splits:
        counted.update(tag_sequences(examples))
    return detect_scheme(counted)


def split_stats(examples: Sequence[Example]) -> SplitStats:
    examples = compact(examples)
    slots: Counter = Counter()
    for tags, count in examples.tag_sequences().items():
        for kind, _, _ in extract_spans(tags):
            slots[kind] += count
    return SplitStats(utterances=len(examples), tokens=len(examples.word_ids),
                      tag_counts=examples.counts("tags"), slot_counts=slots,
                      intent_counts=examples.counts("intents"))


def oov_rates(corpus: Corpus) -> dict[str, float]:
    known = set(compact(corpus.splits.get("train", [])).words.strings)
    rates = {}
    for name in ("valid", "test"):
        counts = compact(corpus.splits.get(name, [])).counts("words")
        total = sum(counts.values())
        if known and total:
            rates[name] = sum(n for w, n in counts.items() if w not in known) / total
    return rates


def soft_problems(corpus: Corpus) -> list[str]:
    """Warnings about a readable corpus: see the module docstring. It reads the splits'
    arrays, so it makes an Example only for an utterance it names."""
    warnings: list[str] = []
    scheme = scheme_of(corpus)
    splits = {name: compact(examples) for name, examples in corpus.splits.items()}
    for name, examples in splits.items():
        broken = {tags: problems for tags in examples.tag_sequences()
                  if (problems := transition_problems(tags, scheme))}
        bad = [f"{examples[i].source or name}: {problem}"
               for i in _where(examples, "tags", broken)
               for problem in broken[examples[i].tags]]
        warnings += _summarise(bad, f"{len(bad)} invalid {SCHEMES[scheme]} transitions in "
                                    f"{name}")
    train = splits.get("train", ExampleArray())
    for name in ("valid", "test"):
        examples = splits.get(name, ExampleArray())
        if not train or not examples:
            continue
        texts = {train[i].tokens for i in _where(train, "words", _texts(examples), True)}
        shared = [f"{e.source or name}: {' '.join(e.tokens)}" for e in examples
                  if e.tokens in texts]
        warnings += _summarise(shared, f"{len(shared)} utterances of {name} also occur in "
                                       "train")
        tags = sorted(set(examples.tags.strings) - set(train.tags.strings))
        if tags:
            warnings.append(f"tags only in {name}, never in train (they count as missed): "
                            + ", ".join(tags))
        intents = sorted(set(examples.intents.strings) - set(train.intents.strings))
        if intents:
            warnings.append(f"intents only in {name}, never in train: " + ", ".join(intents))
    return warnings


def _texts(examples: ExampleArray) -> set[tuple[str, ...]]:
    return {tuple(examples.words.strings[j] for j in ids) for ids in examples.rows("words")}


def _where(examples: ExampleArray, field: str, wanted, first_only: bool = False
           ) -> list[int]:
    """Indices of the utterances whose words or tags (`field`) are among `wanted` (tuples
    of strings); with `first_only`, one index for each sequence found."""
    table = examples.words if field == "words" else examples.tags
    ids = {tuple(table.ids[s] for s in seq) for seq in wanted
           if all(s in table.ids for s in seq)}
    found, seen = [], set()
    for i, row in enumerate(examples.rows(field)):
        if row in ids and not (first_only and row in seen):
            found.append(i)
            seen.add(row)
    return found


def _summarise(items: list[str], headline: str) -> list[str]:
    if not items:
        return []
    shown = "; ".join(items[:_EXAMPLES_SHOWN])
    more = f"; ... {len(items) - _EXAMPLES_SHOWN} more" if len(items) > _EXAMPLES_SHOWN else ""
    return [f"{headline}: {shown}{more}"]
