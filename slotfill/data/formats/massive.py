"""The MASSIVE corpus (Amazon, 51 languages): JSON Lines with the utterance (`utt`), its
slots marked up in `annot_utt` as `[slot : words]`, `intent`, `partition` (train, dev,
test) and `locale`. One file, or a directory of per-locale files (`zh-CN.jsonl`, ...);
`data.locale` selects one or several locales (`zh-CN` or `zh-CN,ja-JP`).

    {"locale": "en-US", "partition": "train", "intent": "alarm_set",
     "utt": "wake me up at five am", "annot_utt": "wake me up at [time : five am]"}

Slots are taken from `annot_utt` and placed on `utt` (whose spacing MASSIVE keeps for
Chinese and Japanese, where `annot_utt` adds spaces around brackets); the text is
tokenised as predict tokenises it (characters for Chinese, Japanese and Thai with
data.tokenizer=auto, as MASSIVE's baselines do).
"""

from __future__ import annotations

import re
from pathlib import Path

from slotfill.data.annotation import Span, annotated_example
from slotfill.data.example import SPLITS, Example, Issues, ReadOptions
from slotfill.data.formats.files import first_json_object, read_json_lines

NAME = "massive"
DESCRIPTION = 'MASSIVE JSON Lines (one file or a directory of per-locale files): {"utt", ' \
              '"annot_utt": "... [slot : words] ...", "intent", "partition", "locale"}'
PARTITIONS = {"train": "train", "dev": "valid", "test": "test"}
_SLOT = re.compile(r"\[\s*([^\s\]:]+)\s*:\s*([^\]]*?)\s*\]")


def _files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(path.glob("*.jsonl"))


def detect(path: Path) -> bool:
    files = _files(path) if path.exists() else []
    return bool(files) and "annot_utt" in (first_json_object(files[0]) or {})


def read(path: Path, options: ReadOptions, issues: Issues, splits: tuple[str, ...] = SPLITS,
         optional: tuple[str, ...] = ()) -> dict[str, list[Example]]:
    if options.split is not None:
        issues.error(f"data.split: MASSIVE has its own partitions (train, dev, test) in "
                     f"{path}; remove data.split")
    files = _files(path)
    wanted = set(options.locales)
    named = [f for f in files if f.stem in wanted]
    if wanted and len(named) == len(wanted):
        files = named  # per-locale files: read only those
    data: dict[str, list[Example]] = {split: [] for split in splits}
    seen: set[str] = set()
    skipped: dict[str, int] = {}
    for file in files:
        objects = read_json_lines(file, issues) or []
        for number, obj in objects:
            locale = obj.get("locale")
            seen.add(str(locale))
            if wanted and locale not in wanted:
                continue
            split = PARTITIONS.get(obj.get("partition"))
            if split is None:
                key = str(obj.get("partition"))
                skipped[key] = skipped.get(key, 0) + 1
                continue
            if split not in data:
                continue
            example = _example(obj, f"{file}:{number}", options.tokenizer, issues)
            if example is not None:
                data[split].append(example)
    if wanted - seen:
        issues.error(f"data.locale: no utterances of {', '.join(sorted(wanted - seen))} in "
                     f"{path}; it has {', '.join(sorted(seen)) or 'none'}")
    for partition, count in skipped.items():
        issues.warn(f"{path}: {count} utterances of partition {partition!r} skipped "
                    "(only train, dev and test are read)")
    for split in splits:
        if not data[split] and split not in optional:
            issues.error(f"{path}: no utterances in partition "
                         f"{'dev' if split == 'valid' else split!r}")
    return {split: examples for split, examples in data.items()
            if examples or split not in optional}


def _example(obj: dict, where: str, tokenizer: str, issues: Issues) -> Example | None:
    annot, utt, intent = obj.get("annot_utt"), obj.get("utt"), obj.get("intent")
    if not isinstance(annot, str) or not isinstance(intent, str) or not intent:
        issues.error(f"{where}: expected strings \"annot_utt\" and \"intent\"")
        return None
    plain, spans = parse_annotation(annot)
    if "[" in plain or "]" in plain:
        issues.error(f"{where}: unbalanced bracket in annot_utt {annot!r}; slots look like "
                     "[slot : words]")
        return None
    text, spans = _onto_utt(plain, spans, utt) if isinstance(utt, str) else (plain, spans)
    if text is plain and isinstance(utt, str) and utt != plain:
        issues.warn(f"{where}: utt and annot_utt differ beyond spacing; using annot_utt's "
                    "words")
    return annotated_example(text, spans, intent, where, tokenizer, issues)


def parse_annotation(annot: str) -> tuple[str, list[Span]]:
    """`wake me at [time : five am]` -> (`wake me at five am`, [Span(11, 18, "time")])."""
    parts: list[str] = []
    spans: list[Span] = []
    position = last = 0
    for match in _SLOT.finditer(annot):
        before = annot[last:match.start()]
        parts.append(before)
        position += len(before)
        words = match.group(2)
        if words:
            spans.append(Span(position, position + len(words), match.group(1)))
        parts.append(words)
        position += len(words)
        last = match.end()
    parts.append(annot[last:])
    return "".join(parts), spans


def _onto_utt(plain: str, spans: list[Span], utt: str) -> tuple[str, list[Span]]:
    """The spans moved from annot_utt's text onto `utt` when the two differ only in
    spacing; otherwise annot_utt's text and spans unchanged."""
    if plain == utt:
        return utt, spans
    mine = [i for i, c in enumerate(plain) if not c.isspace()]
    theirs = [i for i, c in enumerate(utt) if not c.isspace()]
    if [plain[i] for i in mine] != [utt[i] for i in theirs]:
        return plain, spans
    where = {i: j for i, j in zip(mine, theirs)}
    moved = []
    for s in spans:
        inside = [i for i in mine if s.start <= i < s.end]
        moved.append(Span(where[inside[0]], where[inside[-1]] + 1, s.label))
    return utt, moved
