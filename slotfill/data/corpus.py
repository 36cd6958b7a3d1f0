"""Reading a corpus in any format: `read_corpus` (raises on hard problems) and
`scan_corpus` (lists them), over the format modules in data/formats/.

Formats (data.format, `auto` detects them from the files): `atis` (directories of
seq.in/seq.out/label), `conll` (token-tag columns), `jsonl` (text with character-offset
spans, also doccano's export), `tokens` (token and tag lists, OpenSLU's JSON Lines),
`massive` (the MASSIVE corpus, and SLURP), `labelstudio` (Label Studio's JSON and JSON-MIN
exports) and `rasa` (Rasa NLU YAML, or a Rasa project). Every reader normalises tokens as
predict does (data/tokenize.py) and collects every hard problem (with file and line)
before one DataError is raised, so a user fixes a corpus in one pass; soft problems
become warnings, and so do repairs of imperfect annotations (data/annotation.py), which
data.strict makes errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from slotfill.config import BUNDLED, BUNDLED_ZH
from slotfill.data.annotation import SLOT_NAME_RULE
from slotfill.data.compact import ExampleArray, compact
from slotfill.data.example import SPLITS, Example, Issues, ReadOptions, Written
from slotfill.data.formats import FORMATS, detect_format
from slotfill.errors import DataError

__all__ = ["SPLITS", "Corpus", "Example", "ReadOptions", "Written", "detect_format",
           "read_corpus", "resolve_corpus_path", "scan_corpus"]
_MAX_REPORTED = 20


@dataclass
class Corpus:
    path: Path
    format: str  # a name in data.formats.FORMATS
    splits: dict[str, ExampleArray]  # (any sequence of Examples where made by hand)
    warnings: list[str] = field(default_factory=list)  # soft problems: training goes on
    problems: list[str] = field(default_factory=list)  # hard problems (from scan_corpus)
    gazetteers: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)  # Rasa's
    # lookup tables: name -> entries

    def __getitem__(self, split: str) -> list[Example]:
        return self.splits[split]


def resolve_corpus_path(path: str | Path) -> Path:
    """data.path as a path: `bundled` and `bundled-zh` name the sample corpora."""
    if str(path) in (BUNDLED, BUNDLED_ZH):
        from slotfill.resources import sample_corpus_path
        return sample_corpus_path("zh" if str(path) == BUNDLED_ZH else "en")
    return Path(path)


def read_corpus(path: str | Path, fmt: str = "auto", splits: tuple[str, ...] = SPLITS,
                optional: tuple[str, ...] = (), options: ReadOptions = ReadOptions()
                ) -> Corpus:
    """Read the named splits of a corpus (an `optional` split may be absent); raises
    DataError listing every hard problem."""
    corpus = scan_corpus(path, fmt, splits, optional, options)
    if corpus.problems:
        shown = corpus.problems[:_MAX_REPORTED]
        more = len(corpus.problems) - len(shown)
        detail = "\n".join(shown) + (f"\n... and {more} more" if more else "")
        raise DataError(f"Cannot use the corpus in {corpus.path}", detail)
    return corpus


def scan_corpus(path: str | Path, fmt: str = "auto", splits: tuple[str, ...] = SPLITS,
                optional: tuple[str, ...] = (), options: ReadOptions = ReadOptions()
                ) -> Corpus:
    """Read what can be read; hard problems are listed in `problems`, not raised (except
    when there is no corpus at all)."""
    root = resolve_corpus_path(path)
    detected = detect_format(root)  # raises when there is no corpus at all
    fmt = detected if fmt == "auto" else fmt
    issues = Issues(strict=options.strict)
    if options.locales and fmt != "massive":
        issues.error(f"data.locale applies to the massive format only; {root} is {fmt}: "
                     "remove data.locale")
    data = {name: compact(examples) for name, examples in
            FORMATS[fmt].read(root, options, issues, splits, optional).items()}
    issues.finish(SLOT_NAME_RULE)
    return Corpus(path=root, format=fmt, splits=data, warnings=issues.warnings,
                  problems=issues.problems, gazetteers=issues.gazetteers)
