"""CoNLL-style BIO columns: `<root>/{train,valid|dev,test}[.txt|.conll|.bio]` (or one
file split by data.split) with one `token ... tag` line per word (first column the
token, last the tag), a blank line between utterances and optionally a `# intent: NAME`
line before an utterance.

    # intent: atis_flight
    arrive O
    in O
    taipei B-toloc.city_name
"""

from __future__ import annotations

from pathlib import Path

from slotfill.data.annotation import token_example
from slotfill.data.compact import ExampleArray
from slotfill.data.example import SPLITS, Example, Issues, ReadOptions
from slotfill.data.formats.files import Lines, locate_split, read_splits

NAME = "conll"
DESCRIPTION = "files train.txt, valid.txt (or dev), test.txt with `token tag` lines"
SUFFIXES = ("", ".txt", ".conll", ".bio")


def detect(path: Path) -> bool:
    if path.is_file():
        return path.suffix in (".txt", ".conll", ".bio")
    return path.is_dir() and locate_split(path, "train", SUFFIXES) is not None


def read(path: Path, options: ReadOptions, issues: Issues, splits: tuple[str, ...] = SPLITS,
         optional: tuple[str, ...] = ()) -> dict[str, list[Example]]:
    return read_splits(path, read_file, SUFFIXES, options, issues, splits, optional)


def read_file(path: Path, options: ReadOptions, issues: Issues) -> list[Example] | None:
    """The file's examples, or None when it could not be read."""
    lines = Lines(path, issues)  # read as the loop goes
    examples = ExampleArray()
    tokens: list[str] = []
    tags: list[str] = []
    intent: str | None = None
    bad_sentence = False
    first_line = 1

    def flush() -> None:
        nonlocal tokens, tags, intent, bad_sentence
        if tokens and not bad_sentence:
            examples.append(token_example(tokens, tags, intent, f"{path}:{first_line}",
                                          options.tokenizer))
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
                issues.error(f"{path}:{number}: expected a token and a tag, got {stripped!r}")
                bad_sentence = True
                continue
            tokens.append(columns[0])
            tags.append(columns[-1])
    flush()
    return None if lines.failed else examples


def write(splits: dict[str, list[Example]]) -> dict[str, bytes]:
    """The files of `splits` in this format: relative path -> content."""
    files = {}
    for split, examples in splits.items():
        blocks = []
        for e in examples:
            head = [f"# intent: {e.intent}"] if e.intent is not None else []
            blocks.append("\n".join(head + [f"{w} {t}" for w, t in
                                            zip(e.written.words(), e.tags)]) + "\n")
        files[f"{split}.txt"] = "\n".join(blocks).encode("utf-8")
    return files
