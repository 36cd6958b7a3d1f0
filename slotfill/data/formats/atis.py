"""The ATIS directory format: `<root>/{train,valid|dev,test}/` each holding `seq.in`
(tokens), `seq.out` (one BIO tag per token) and optionally `label` (the intent), one
utterance per line.

    seq.in   arrive in taipei on nov 2nd
    seq.out  O O B-toloc.city_name O B-arrive_date.month_name B-arrive_date.day_number
    label    atis_flight
"""

from __future__ import annotations

from itertools import zip_longest
from pathlib import Path

from slotfill.data.annotation import token_example
from slotfill.data.compact import ExampleArray
from slotfill.data.example import SPLITS, Example, Issues, ReadOptions
from slotfill.data.formats.files import Lines, read_splits

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
    streams = [Lines(seq_in, issues), Lines(seq_out, issues)]
    if label.is_file():
        streams.append(Lines(label, issues))
    examples = ExampleArray()
    counts = [0] * len(streams)  # lines of each file, to report files of other lengths
    found: list[tuple[str, str]] = []  # (error | warn, message): told when the lengths agree
    for i, row in enumerate(zip_longest(*streams)):  # the files in step, a line at a time
        for k, line in enumerate(row):
            counts[k] += line is not None
        if None in row:
            continue
        line_in, line_out, intent = row if len(row) == 3 else (*row, None)
        tokens, labels = line_in.split(), line_out.split()
        if len(tokens) != len(labels):
            found.append(("error", f"{seq_out}:{i + 1}: {len(labels)} tags for "
                                   f"{len(tokens)} tokens in {seq_in}:{i + 1}"))
            continue
        if not tokens:
            found.append(("warn", f"{seq_in}:{i + 1}: blank line skipped"))
            continue
        if intent is not None:
            intent = intent.strip()
            if not intent:
                found.append(("error", f"{label}:{i + 1}: empty intent"))
                continue
        examples.append(token_example(tokens, labels, intent, f"{seq_out}:{i + 1}",
                                      options.tokenizer))
    if any(stream.failed for stream in streams):
        return None
    for stream, count in zip(streams[1:], counts[1:]):
        if count != counts[0]:
            issues.error(f"{stream.path}: {count} lines but {seq_in} has {counts[0]}")
    if len(set(counts)) > 1:
        return None
    for kind, message in found:
        getattr(issues, kind)(message)
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
