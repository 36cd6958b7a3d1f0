"""JSON Lines with character-offset spans, one utterance per line: slotfill's own form
and the doccano export form (`label`, or `entities` with `start_offset`/`end_offset`).

    {"text": "arrive in Taipei", "spans": [{"start": 10, "end": 16,
     "label": "toloc.city_name"}], "intent": "atis_flight"}
    {"text": "arrive in Taipei", "label": [[10, 16, "toloc.city_name"]]}

Split files `train.jsonl`, `valid.jsonl` (or `dev.jsonl`), `test.jsonl` in a directory,
or one file split by data.split. The text is tokenised as predict tokenises it.
"""

from __future__ import annotations

import json
from pathlib import Path

from slotfill.data.annotation import Span, annotated_example, spans_of
from slotfill.data.example import SPLITS, Example, Issues, ReadOptions
from slotfill.data.formats.files import (
    first_json_object,
    locate_split,
    read_json_lines,
    read_splits,
)

NAME = "jsonl"
DESCRIPTION = 'train.jsonl, valid.jsonl, test.jsonl: {"text", "spans": [{"start", "end", ' \
              '"label"}], "intent"} or doccano {"text", "label": [[start, end, label]]}'
SUFFIXES = (".jsonl", ".json")


def sniff(path: Path) -> dict | None:
    """The first object of a JSON Lines file, or of a directory's train file."""
    if path.is_dir():
        path = locate_split(path, "train", SUFFIXES)
        if path is None:
            return None
    return first_json_object(path)


def detect(path: Path) -> bool:
    first = sniff(path)
    return first is not None and isinstance(first.get("text"), str)


def read(path: Path, options: ReadOptions, issues: Issues, splits: tuple[str, ...] = SPLITS,
         optional: tuple[str, ...] = ()) -> dict[str, list[Example]]:
    return read_splits(path, read_file, SUFFIXES, options, issues, splits, optional)


def read_file(path: Path, options: ReadOptions, issues: Issues) -> list[Example] | None:
    objects = read_json_lines(path, issues)
    if objects is None:
        return None
    examples = []
    for number, obj in objects:
        where = f"{path}:{number}"
        text, intent = obj.get("text"), obj.get("intent")
        if not isinstance(text, str):
            issues.error(f"{where}: expected \"text\" to be a string, got "
                         f"{type(text).__name__}" + (" (a list of tokens is the tokens "
                                                     "format: data.format=tokens)"
                                                     if isinstance(text, list) else ""))
            continue
        if intent is not None and (not isinstance(intent, str) or not intent.strip()):
            issues.error(f"{where}: \"intent\" must be a non-empty string, got {intent!r}")
            continue
        spans = _spans(obj, text, where, issues)
        if spans is None:
            continue
        example = annotated_example(text, spans, intent, where, options.tokenizer, issues)
        if example is not None:
            examples.append(example)
    return examples


def _spans(obj: dict, text: str, where: str, issues: Issues) -> list[Span] | None:
    """The object's spans in whichever form it has (checked later); None after a
    problem."""
    raw = []
    if isinstance(obj.get("spans"), list):
        for s in obj["spans"]:
            if not isinstance(s, dict):
                issues.error(f"{where}: each of \"spans\" is an object with start, end, "
                             f"label; got {s!r}")
                return None
            raw.append((s.get("start"), s.get("end"), s.get("label")))
    elif isinstance(obj.get("entities"), list):  # doccano >= 1.6
        for s in obj["entities"]:
            if not isinstance(s, dict):
                issues.error(f"{where}: each of \"entities\" is an object with "
                             f"start_offset, end_offset, label; got {s!r}")
                return None
            raw.append((s.get("start_offset"), s.get("end_offset"), s.get("label")))
    elif isinstance(obj.get("label"), list):  # doccano's sequence-labelling export
        for s in obj["label"]:
            if not isinstance(s, list) or len(s) != 3:
                issues.error(f"{where}: each of \"label\" is [start, end, label]; got {s!r}")
                return None
            raw.append(tuple(s))
    elif any(k in obj for k in ("spans", "entities", "label")):
        issues.error(f"{where}: \"spans\" (or doccano's \"label\") must be a list")
        return None
    return [Span(start, end, label) for start, end, label in raw]


def write(splits: dict[str, list[Example]]) -> dict[str, bytes]:
    """The files of `splits` in this format: relative path -> content."""
    files = {}
    for split, examples in splits.items():
        lines = []
        for e in examples:
            obj = {"text": e.written.text,
                   "spans": [{"start": s.start, "end": s.end, "label": s.label}
                             for s in spans_of(e)]}
            if e.intent is not None:
                obj["intent"] = e.intent
            lines.append(json.dumps(obj, ensure_ascii=False) + "\n")
        files[f"{split}.jsonl"] = "".join(lines).encode("utf-8")
    return files
