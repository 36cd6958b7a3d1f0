"""JSON Lines with character-offset spans, one utterance per line: slotfill's own form
and the doccano export form (`label`, or `entities` with `start_offset`/`end_offset`; the
intent in `cats` for doccano's intent detection and slot filling projects).

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
    json_examples,
    locate_split,
    read_splits,
    valid_intent,
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
    def make(obj: dict, where: str) -> Example | None:
        text, intent = obj.get("text"), obj.get("intent")
        cats = obj.get("cats")  # doccano's intent detection and slot filling projects
        if intent is None and isinstance(cats, list) and cats:
            intent = "#".join(str(c) for c in cats)
        if not isinstance(text, str):
            hint = (" (a list of tokens is the tokens format: data.format=tokens)"
                    if isinstance(text, list) else "")
            issues.error(f"{where}: expected \"text\" to be a string, got "
                         f"{type(text).__name__}{hint}")
            return None
        spans = _spans(obj, where, issues)
        if spans is None or not valid_intent(intent, where, issues):
            return None
        return annotated_example(text, spans, intent, where, options.tokenizer, issues)
    return json_examples(path, issues, make)


# the span forms: key -> (start, end, label) fields of each item (None: a 3-item list)
_FORMS = {"spans": ("start", "end", "label"),
          "entities": ("start_offset", "end_offset", "label"),  # doccano >= 1.6
          "label": None}  # doccano's sequence-labelling export: [start, end, label]


def _spans(obj: dict, where: str, issues: Issues) -> list[Span] | None:
    """The object's spans in whichever form it has (checked later); None after a
    problem."""
    for key, fields in _FORMS.items():
        items = obj.get(key)
        if key not in obj:
            continue
        if not isinstance(items, list):
            issues.error(f"{where}: \"{key}\" must be a list")
            return None
        spans = []
        for item in items:
            if fields is None and isinstance(item, list) and len(item) == 3:
                spans.append(Span(*item))
            elif fields is not None and isinstance(item, dict):
                spans.append(Span(*(item.get(f) for f in fields)))
            else:
                shape = "[start, end, label]" if fields is None else \
                    "an object with " + ", ".join(fields)
                issues.error(f"{where}: each of \"{key}\" is {shape}; got {item!r}")
                return None
        return spans
    return []


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
