"""Token-list JSON Lines (OpenSLU's form): one utterance per line with its tokens and one
tag per token.

    {"text": ["arrive", "in", "taipei"], "slot": ["O", "O", "B-toloc.city_name"],
     "intent": "atis_flight"}

Split files `train.jsonl`, `valid.jsonl` (or `dev.jsonl`), `test.jsonl` in a directory,
or one file split by data.split.
"""

from __future__ import annotations

import json
from pathlib import Path

from slotfill.data.annotation import token_example
from slotfill.data.example import SPLITS, Example, Issues, ReadOptions
from slotfill.data.formats import jsonl
from slotfill.data.formats.files import json_examples, read_splits, valid_intent

NAME = "tokens"
DESCRIPTION = 'train.jsonl, valid.jsonl, test.jsonl: {"text": [tokens], "slot": [tags], ' \
              '"intent"}'


def detect(path: Path) -> bool:
    first = jsonl.sniff(path)
    return first is not None and isinstance(first.get("text"), list)


def read(path: Path, options: ReadOptions, issues: Issues, splits: tuple[str, ...] = SPLITS,
         optional: tuple[str, ...] = ()) -> dict[str, list[Example]]:
    return read_splits(path, read_file, jsonl.SUFFIXES, options, issues, splits, optional)


def read_file(path: Path, options: ReadOptions, issues: Issues) -> list[Example] | None:
    def make(obj: dict, where: str) -> Example | None:
        words, tags, intent = obj.get("text"), obj.get("slot"), obj.get("intent")
        if not _strings(words) or not _strings(tags):
            issues.error(f"{where}: expected \"text\" and \"slot\" to be lists of strings")
            return None
        bad = [w for w in words + tags if not w.strip() or any(c.isspace() for c in w)]
        if bad:
            issues.error(f"{where}: tokens and tags are non-empty and have no spaces; got "
                         f"{bad[0]!r}")
            return None
        if len(words) != len(tags):
            issues.error(f"{where}: {len(tags)} tags for {len(words)} tokens")
            return None
        if not valid_intent(intent, where, issues):
            return None
        if not words:
            issues.warn(f"{where}: empty utterance skipped")
            return None
        return token_example(words, tags, intent, where, options.tokenizer)
    return json_examples(path, issues, make)


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def write(splits: dict[str, list[Example]]) -> dict[str, bytes]:
    files = {}
    for split, examples in splits.items():
        lines = []
        for e in examples:
            obj = {"text": e.written.words(), "slot": list(e.tags)}
            if e.intent is not None:
                obj["intent"] = e.intent
            lines.append(json.dumps(obj, ensure_ascii=False) + "\n")
        files[f"{split}.jsonl"] = "".join(lines).encode("utf-8")
    return files
