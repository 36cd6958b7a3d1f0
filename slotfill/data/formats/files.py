"""What the corpus readers share: reading text and JSON Lines files, finding split files,
and splitting a corpus that comes without splits."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

from slotfill.data.compact import ExampleArray
from slotfill.data.example import SPLITS, Example, Issues, ReadOptions
from slotfill.data.splitting import stratified_split

SPLIT_NAMES = {"train": ("train",), "valid": ("valid", "dev"), "test": ("test",)}
ReadFile = Callable[[Path, ReadOptions, Issues], "list[Example] | None"]


class Lines:
    """The lines of a UTF-8 text file without line endings (\\n or \\r\\n), read as they
    are iterated: a file's size never matters. A file that cannot be read or is not UTF-8
    is a problem naming file (and line); iteration stops there and `failed` is set."""

    def __init__(self, path: Path, issues: Issues) -> None:
        self.path, self.issues, self.failed = path, issues, False

    def __iter__(self) -> Iterator[str]:
        try:
            f = open(self.path, "rb")
        except OSError as exc:
            self._fail(f"{self.path}: cannot read ({exc.strerror})")
            return
        with f:
            for number, raw in enumerate(f, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    self._fail(f"{self.path}:{number}: not valid UTF-8 (byte "
                               f"0x{raw[exc.start]:02x}); save the file as UTF-8")
                    return
                if number == 1 and line.startswith("\ufeff"):
                    line = line[1:]
                yield line.rstrip("\n").rstrip("\r")

    def _fail(self, message: str) -> None:
        self.failed = True
        self.issues.error(message)


def read_lines(path: Path, issues: Issues) -> list[str] | None:
    """Lines of a UTF-8 text file without line endings (\\n or \\r\\n); None if unreadable."""
    lines = Lines(path, issues)
    read = list(lines)
    return None if lines.failed else read


def read_json_lines(path: Path, issues: Issues) -> list[tuple[int, dict]] | None:
    """(line number, object) for each non-blank line; a line that is not a JSON object is
    a problem naming file and line."""
    lines = Lines(path, issues)
    objects = list(_json_objects(lines, issues))
    return None if lines.failed else objects


def _json_objects(lines: Lines, issues: Issues) -> Iterator[tuple[int, dict]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            issues.error(f"{lines.path}:{number}: not valid JSON ({exc.msg} at column "
                         f"{exc.colno})")
            continue
        if not isinstance(value, dict):
            issues.error(f"{lines.path}:{number}: expected a JSON object, got "
                         f"{type(value).__name__}")
            continue
        yield number, value


def json_examples(path: Path, issues: Issues, make) -> ExampleArray | None:
    """`make(obj, where)` (an Example, or None after reporting a problem) for each object
    of a JSON Lines file, read a line at a time; None if the file cannot be read."""
    lines = Lines(path, issues)
    made = (make(obj, f"{path}:{number}") for number, obj in _json_objects(lines, issues))
    examples = ExampleArray(example for example in made if example is not None)
    return None if lines.failed else examples


def valid_intent(intent, where: str, issues: Issues) -> bool:
    """An intent is absent or a non-empty string."""
    if intent is not None and (not isinstance(intent, str) or not intent.strip()):
        issues.error(f"{where}: \"intent\" must be a non-empty string, got {intent!r}")
        return False
    return True


def first_json_object(path: Path) -> dict | None:
    """The first non-blank line of a file as a JSON object, for format detection."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            for line in f:
                if line.strip():
                    value = json.loads(line)
                    return value if isinstance(value, dict) else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return None


def locate_split(root: Path, split: str, suffixes: tuple[str, ...],
                 directory: bool = False) -> Path | None:
    """`root/train.jsonl`, `root/dev.txt`, ... (or `root/train/` for a directory)."""
    for name in SPLIT_NAMES[split]:
        for suffix in suffixes:
            candidate = root / f"{name}{suffix}"
            if candidate.is_dir() if directory else candidate.is_file():
                return candidate
    return None


def read_splits(path: Path, read_file: ReadFile, suffixes: tuple[str, ...],
                options: ReadOptions, issues: Issues, splits: tuple[str, ...] = SPLITS,
                optional: tuple[str, ...] = (), directory: bool = False
                ) -> dict[str, list[Example]]:
    """The named splits of a corpus of split files (`train.jsonl`, `valid.jsonl`, ...),
    or of one file of examples split by data.split."""
    if path.is_file():
        return split_unsplit(path, read_file(path, options, issues), options, issues, splits)
    if options.split is not None:
        issues.error(f"data.split: {path} has its own splits ({path.name}/train...); "
                     "remove data.split, or point data.path at one file")
    data: dict[str, list[Example]] = {}
    for split in splits:
        location = locate_split(path, split, suffixes, directory)
        if location is None:
            if split not in optional:
                names = " or ".join(f"{n}{suffixes[0]}" for n in SPLIT_NAMES[split])
                issues.error(f"missing split {split!r}: no {names} in {path}")
            continue
        examples = read_file(location, options, issues)
        if examples is not None and not examples:
            issues.error(f"{location}: split {split!r} is empty")
        data[split] = examples or []
    return data


def split_unsplit(path: Path, examples: list[Example] | None, options: ReadOptions,
                  issues: Issues, splits: tuple[str, ...] = SPLITS
                  ) -> dict[str, list[Example]]:
    """A corpus without splits (one file, Rasa data) split by data.split."""
    if options.split is None:
        issues.error(f"{path} has no train/valid/test splits: set data.split=0.8,0.1,0.1 "
                     "(shares of train, valid and test; stratified by intent, data.split_seed "
                     "fixes the draw; `data check` and `data convert` take --split 0.8,0.1,0.1)")
        return {split: [] for split in splits}
    if examples is None:
        return {split: [] for split in splits}
    if not examples:
        issues.error(f"{path}: no examples")
        return {split: [] for split in splits}
    parts = stratified_split(examples, options.split, options.split_seed)
    for split in splits:
        if not parts[split] and split != "test":
            issues.error(f"{path}: data.split={','.join(map(str, options.split))} leaves "
                         f"split {split!r} empty ({len(examples)} examples); raise its share")
    return {split: parts[split] for split in splits}
