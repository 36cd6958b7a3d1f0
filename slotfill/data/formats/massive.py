"""The MASSIVE corpus (Amazon, 51 languages) and SLURP, whose English utterances MASSIVE
was made from: JSON Lines with the utterance, its slots marked up as `[slot : words]`,
and its intent. MASSIVE's records name their `partition` (train, dev, test) and
`locale`; it comes as one file or a directory of per-locale files (`zh-CN.jsonl`, ...),
and `data.locale` selects one or several locales (`zh-CN` or `zh-CN,ja-JP`).

    {"locale": "en-US", "partition": "train", "intent": "alarm_set",
     "utt": "wake me up at five am", "annot_utt": "wake me up at [time : five am]"}

SLURP's records (`sentence`, `sentence_annotation`, `intent`, and more fields that are
not read) take their split from their file's name: train.jsonl (and train_synthetic.jsonl)
train, devel.jsonl (or dev, valid) valid, test.jsonl test; a file of another name is split
by data.split.

    {"slurp_id": 13804, "sentence": "wake me up at five am", "intent": "alarm_set",
     "sentence_annotation": "wake me up at [time : five am]", "action": "set"}

Slots are taken from the annotation and placed on the utterance (whose spacing MASSIVE
keeps for Chinese and Japanese, where `annot_utt` adds spaces around brackets); the text is
tokenised as predict tokenises it (characters for Chinese, Japanese and Thai with
data.tokenizer=auto, as MASSIVE's baselines do).
"""

from __future__ import annotations

import re
from pathlib import Path

from slotfill.data.annotation import Span, annotated_example
from slotfill.data.example import SPLITS, Example, Issues, ReadOptions
from slotfill.data.formats.files import first_json_object, read_json_lines, split_unsplit

NAME = "massive"
DESCRIPTION = 'MASSIVE JSON Lines (one file or a directory of per-locale files): {"utt", ' \
              '"annot_utt": "... [slot : words] ...", "intent", "partition", "locale"}; ' \
              'or SLURP\'s {"sentence", "sentence_annotation", "intent"}'
PARTITIONS = {"train": "train", "dev": "valid", "test": "test"}
FILE_SPLITS = {"devel": "valid", "dev": "valid", "valid": "valid", "test": "test"}  # SLURP
FIELDS = (("utt", "annot_utt"), ("sentence", "sentence_annotation"))  # MASSIVE, SLURP
_SLOT = re.compile(r"\[\s*([^\s\]:]+)\s*:\s*([^\]]*?)\s*\]")


def _files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(path.glob("*.jsonl"))


def detect(path: Path) -> bool:
    files = _files(path) if path.exists() else []
    first = first_json_object(files[0]) if files else None
    return first is not None and any(annotation in first for _, annotation in FIELDS)


def read(path: Path, options: ReadOptions, issues: Issues, splits: tuple[str, ...] = SPLITS,
         optional: tuple[str, ...] = ()) -> dict[str, list[Example]]:
    files = _files(path)
    wanted = set(options.locales)
    named = [f for f in files if f.stem in wanted]
    if wanted and len(named) == len(wanted):
        files = named  # per-locale files: read only those
    data: dict[str, list[Example]] = {split: [] for split in splits}
    unsplit: list[Example] = []  # neither the record nor its file name gives a split
    seen: set[str] = set()
    skipped: dict[str, int] = {}
    for file in files:
        objects = read_json_lines(file, issues) or []
        for number, obj in objects:
            locale = obj.get("locale")
            seen.add(str(locale))
            if wanted and locale not in wanted:
                continue
            split = _split_of(obj, file)
            if split and split not in SPLITS:
                skipped[split] = skipped.get(split, 0) + 1
                continue
            if split and split not in data:
                continue
            example = _example(obj, f"{file}:{number}", options.tokenizer, issues)
            if example is not None:
                (data[split] if split else unsplit).append(example)
    if wanted - seen:
        issues.error(f"data.locale: no utterances of {', '.join(sorted(wanted - seen))} in "
                     f"{path}; it has {', '.join(sorted(seen)) or 'none'}")
    for partition, count in skipped.items():
        issues.warn(f"{path}: {count} utterances of partition {partition!r} skipped "
                    "(only train, dev and test are read)")
    if unsplit and not any(data.values()):
        return split_unsplit(path, unsplit, options, issues, splits)
    if unsplit:
        issues.error(f"{path}: {len(unsplit)} utterances have no partition and come from "
                     "a file whose name gives no split (train, devel or test)")
    if options.split is not None:
        issues.error(f"data.split: {path} has its own partitions (train, dev, test); remove "
                     "data.split")
    for split in splits:
        if not data[split] and split not in optional:
            issues.error(f"{path}: no utterances in partition "
                         f"{'dev' if split == 'valid' else split!r}")
    return {split: examples for split, examples in data.items()
            if examples or split not in optional}


def _split_of(obj: dict, file: Path) -> str:
    """train, valid or test; another partition's name (not read); or '' when neither the
    record nor its file's name says (data.split deals it)."""
    if "partition" in obj:
        return PARTITIONS.get(obj["partition"], str(obj["partition"]))
    stem = file.stem.lower()
    return "train" if stem.startswith("train") else FILE_SPLITS.get(stem, "")


def _example(obj: dict, where: str, tokenizer: str, issues: Issues) -> Example | None:
    plain_key, annot_key = next((f for f in FIELDS if f[1] in obj), FIELDS[0])
    annot, utt, intent = obj.get(annot_key), obj.get(plain_key), obj.get("intent")
    if not isinstance(annot, str) or not isinstance(intent, str) or not intent:
        issues.error(f"{where}: expected strings \"{annot_key}\" and \"intent\"")
        return None
    plain, spans = parse_annotation(annot)
    if "[" in plain or "]" in plain:
        issues.error(f"{where}: unbalanced bracket in {annot_key} {annot!r}; slots look like "
                     "[slot : words]")
        return None
    text, spans = _onto_utt(plain, spans, utt) if isinstance(utt, str) else (plain, spans)
    if text is plain and isinstance(utt, str) and utt != plain:
        issues.repair(f"{where}: {plain_key} and {annot_key} differ beyond spacing; "
                      f"repaired by using {annot_key}'s words")
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
