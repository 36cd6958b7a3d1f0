"""Corpus readers: the ATIS directory format and a CoNLL-style BIO column format.

ATIS format: `<root>/{train,valid|dev,test}/` each holding `seq.in` (tokens), `seq.out`
(one BIO tag per token) and optionally `label` (the intent), one utterance per line.

CoNLL format: `<root>/{train,valid|dev,test}[.txt|.conll|.bio]` with one `token ... tag`
line per word (first column the token, last the tag), a blank line between utterances and
optionally a `# intent: NAME` line before an utterance.

Tokens are read with Unicode look-alikes (curly quotes, dashes) replaced as predict
replaces them (data/tokenize.py). Readers collect every hard problem (with file and line)
before raising one DataError, so a user fixes a corpus in one pass; soft problems become
warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from slotfill.config import BUNDLED
from slotfill.data.tokenize import normalise
from slotfill.errors import DataError

SPLITS = ("train", "valid", "test")
_SPLIT_ALIASES = {"train": ("train",), "valid": ("valid", "dev"), "test": ("test",)}
_CONLL_SUFFIXES = ("", ".txt", ".conll", ".bio")
_MAX_REPORTED = 20


@dataclass(frozen=True)
class Example:
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    intent: str | None = None
    source: str | None = field(default=None, compare=False)  # "file:line", for messages


@dataclass
class Corpus:
    path: Path
    format: str  # "atis" | "conll"
    splits: dict[str, list[Example]]
    warnings: list[str] = field(default_factory=list)  # soft problems: training goes on
    problems: list[str] = field(default_factory=list)  # hard problems (from scan_corpus)

    def __getitem__(self, split: str) -> list[Example]:
        return self.splits[split]


def resolve_corpus_path(path: str | Path) -> Path:
    if str(path) == BUNDLED:
        from slotfill.resources import sample_corpus_path
        return sample_corpus_path()
    return Path(path)


def detect_format(root: Path) -> str:
    if not root.is_dir():
        raise DataError(f"Corpus directory not found: {root}",
                        "set data.path to a directory with train/valid/test splits")
    if (root / "train" / "seq.in").is_file():
        return "atis"
    if any((root / f"train{s}").is_file() for s in _CONLL_SUFFIXES):
        return "conll"
    raise DataError(f"No corpus found in {root}",
                    "expected the ATIS layout (train/seq.in, train/seq.out, ...) or CoNLL "
                    "files (train.txt, valid.txt, test.txt with `token tag` lines)")


def read_corpus(path: str | Path, fmt: str = "auto", splits: tuple[str, ...] = SPLITS,
                optional: tuple[str, ...] = ()) -> Corpus:
    """Read the named splits of a corpus (an `optional` split may be absent); raises
    DataError listing every hard problem."""
    corpus = scan_corpus(path, fmt, splits, optional)
    if corpus.problems:
        shown = corpus.problems[:_MAX_REPORTED]
        more = len(corpus.problems) - len(shown)
        detail = "\n".join(shown) + (f"\n... and {more} more" if more else "")
        raise DataError(f"Cannot use the corpus in {corpus.path}", detail)
    return corpus


def scan_corpus(path: str | Path, fmt: str = "auto", splits: tuple[str, ...] = SPLITS,
                optional: tuple[str, ...] = ()) -> Corpus:
    """Read what can be read; hard problems are listed in `problems`, not raised (except
    when there is no corpus at all)."""
    root = resolve_corpus_path(path)
    detected = detect_format(root)  # raises when there is no corpus at all
    fmt = detected if fmt == "auto" else fmt
    reader = _read_atis_split if fmt == "atis" else _read_conll_split
    problems: list[str] = []
    warnings: list[str] = []
    data = {}
    for split in splits:
        location = _locate_split(root, fmt, split)
        if location is None and split in optional:
            continue
        if location is None:
            names = " or ".join(_SPLIT_ALIASES[split])
            problems.append(f"missing split {split!r}: no {names} "
                            f"{'directory' if fmt == 'atis' else 'file'} in {root}")
            continue
        examples = reader(location, problems, warnings)
        if examples is not None and not examples:
            problems.append(f"{location}: split {split!r} is empty")
        data[split] = examples or []
    return Corpus(path=root, format=fmt, splits=data, warnings=warnings, problems=problems)


def _locate_split(root: Path, fmt: str, split: str) -> Path | None:
    for name in _SPLIT_ALIASES[split]:
        if fmt == "atis" and (root / name).is_dir():
            return root / name
        if fmt == "conll":
            for suffix in _CONLL_SUFFIXES:
                if (root / f"{name}{suffix}").is_file():
                    return root / f"{name}{suffix}"
    return None


def read_lines(path: Path, problems: list[str]) -> list[str] | None:
    """Lines of a UTF-8 text file without line endings (\\n or \\r\\n); None if unreadable."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.append(f"{path}: cannot read ({exc.strerror})")
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(f"{path}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x}); "
                        "save the file as UTF-8")
        return None
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def _read_atis_split(folder: Path, problems: list[str],
                     warnings: list[str]) -> list[Example] | None:
    """The split's examples, or None when a hard problem was reported."""
    seq_in, seq_out, label = folder / "seq.in", folder / "seq.out", folder / "label"
    missing = [p for p in (seq_in, seq_out) if not p.is_file()]
    problems.extend(f"{p}: file missing" for p in missing)
    if missing:
        return None
    words = read_lines(seq_in, problems)
    tags = read_lines(seq_out, problems)
    intents = read_lines(label, problems) if label.is_file() else None
    if words is None or tags is None or (label.is_file() and intents is None):
        return None
    if len(words) != len(tags):
        problems.append(f"{seq_out}: {len(tags)} lines but {seq_in} has {len(words)}")
        return None
    if intents is not None and len(intents) != len(words):
        problems.append(f"{label}: {len(intents)} lines but {seq_in} has {len(words)}")
        return None
    examples = []
    for i, (line_in, line_out) in enumerate(zip(words, tags)):
        tokens, labels = normalise(line_in).split(), line_out.split()
        if len(tokens) != len(labels):
            problems.append(f"{seq_out}:{i + 1}: {len(labels)} tags for {len(tokens)} tokens "
                            f"in {seq_in}:{i + 1}")
            continue
        if not tokens:
            warnings.append(f"{seq_in}:{i + 1}: blank line skipped")
            continue
        intent = intents[i].strip() if intents is not None else None
        if intents is not None and not intent:
            problems.append(f"{label}:{i + 1}: empty intent")
            continue
        examples.append(Example(tuple(tokens), tuple(labels), intent, f"{seq_out}:{i + 1}"))
    return examples


def _read_conll_split(path: Path, problems: list[str],
                      warnings: list[str]) -> list[Example] | None:
    """The split's examples, or None when the file could not be read."""
    lines = read_lines(path, problems)
    if lines is None:
        return None
    examples: list[Example] = []
    tokens: list[str] = []
    tags: list[str] = []
    intent: str | None = None
    bad_sentence = False
    first_line = 1

    def flush() -> None:
        nonlocal tokens, tags, intent, bad_sentence
        if tokens and not bad_sentence:
            examples.append(Example(tuple(tokens), tuple(tags), intent, f"{path}:{first_line}"))
        tokens, tags, intent, bad_sentence = [], [], None, False

    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not tokens:
            first_line = number
        if not stripped:
            flush()
        elif stripped.startswith("#"):
            key, _, value = stripped[1:].strip().partition(" ")
            if key.rstrip(":=") == "intent":
                intent = value.strip().lstrip(":=").strip() or None
        elif stripped.startswith("-DOCSTART-"):
            continue
        else:
            columns = stripped.split()
            if len(columns) < 2:
                problems.append(f"{path}:{number}: expected a token and a tag, got "
                                f"{stripped!r}")
                bad_sentence = True
                continue
            tokens.append(normalise(columns[0]))
            tags.append(columns[-1])
    flush()
    return examples
