"""The ATIS directory format: `<root>/{train,valid|dev,test}/` each holding `seq.in`
(tokens), `seq.out` (one BIO tag per token) and optionally `label` (the intent), one
utterance per line.

    seq.in   arrive in taipei on nov 2nd
    seq.out  O O B-toloc.city_name O B-arrive_date.month_name B-arrive_date.day_number
    label    atis_flight
"""

from __future__ import annotations

from pathlib import Path

from slotfill.data.annotation import token_example
from slotfill.data.example import SPLITS, Example, Issues, ReadOptions
from slotfill.data.formats.files import read_lines, read_splits

NAME = "atis"
DESCRIPTION = "directories train/, valid/ (or dev/), test/ with seq.in, seq.out, label"


def detect(path: Path) -> bool:
    return path.is_dir() and (path / "train" / "seq.in").is_file()


def read(path: Path, options: ReadOptions, issues: Issues, splits: tuple[str, ...] = SPLITS,
         optional: tuple[str, ...] = ()) -> dict[str, list[Example]]:
    if path.is_file():
        issues.error(f"{path}: the atis format is a directory with train/, valid/ and test/ "
                     "folders; point data.path at that directory")
        return {}
    return read_splits(path, read_split, ("",), options, issues, splits, optional,
                       directory=True)


def read_split(folder: Path, options: ReadOptions, issues: Issues) -> list[Example] | None:
    """The split's examples, or None when a hard problem was reported."""
    seq_in, seq_out, label = folder / "seq.in", folder / "seq.out", folder / "label"
    missing = [p for p in (seq_in, seq_out) if not p.is_file()]
    for p in missing:
        issues.error(f"{p}: file missing")
    if missing:
        return None
    words = read_lines(seq_in, issues)
    tags = read_lines(seq_out, issues)
    intents = read_lines(label, issues) if label.is_file() else None
    if words is None or tags is None or (label.is_file() and intents is None):
        return None
    if len(words) != len(tags):
        issues.error(f"{seq_out}: {len(tags)} lines but {seq_in} has {len(words)}")
        return None
    if intents is not None and len(intents) != len(words):
        issues.error(f"{label}: {len(intents)} lines but {seq_in} has {len(words)}")
        return None
    examples = []
    for i, (line_in, line_out) in enumerate(zip(words, tags)):
        tokens, labels = line_in.split(), line_out.split()
        if len(tokens) != len(labels):
            issues.error(f"{seq_out}:{i + 1}: {len(labels)} tags for {len(tokens)} tokens "
                         f"in {seq_in}:{i + 1}")
            continue
        if not tokens:
            issues.warn(f"{seq_in}:{i + 1}: blank line skipped")
            continue
        intent = intents[i].strip() if intents is not None else None
        if intents is not None and not intent:
            issues.error(f"{label}:{i + 1}: empty intent")
            continue
        examples.append(token_example(tokens, labels, intent, f"{seq_out}:{i + 1}",
                                      options.tokenizer))
    return examples


def write(splits: dict[str, list[Example]]) -> dict[str, bytes]:
    """The files of `splits` in this format: relative path -> content."""
    files = {}
    for split, examples in splits.items():
        files[f"{split}/seq.in"] = _lines(" ".join(e.written.words()) for e in examples)
        files[f"{split}/seq.out"] = _lines(" ".join(e.tags) for e in examples)
        if examples and all(e.intent is not None for e in examples):
            files[f"{split}/label"] = _lines(e.intent for e in examples)
    return files


def _lines(lines) -> bytes:
    return "".join(line + "\n" for line in lines).encode("utf-8")
