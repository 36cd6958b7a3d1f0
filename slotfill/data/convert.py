"""`slotfill data convert`: a corpus from any readable format into atis, conll, jsonl or
tokens, optionally in another tag scheme, written atomically and read back to report
anything the target format cannot keep (lossless round trips where the formats allow:
atis -> jsonl -> atis gives the same bytes)."""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from slotfill.data.bio import SCHEMES, convert_tags
from slotfill.data.compact import ExampleArray
from slotfill.data.corpus import ReadOptions, read_corpus, resolve_corpus_path
from slotfill.data.example import SPLITS, Issues
from slotfill.data.formats import FORMATS, WRITABLE
from slotfill.errors import UsageError

_SHOWN = 5


@dataclass
class Conversion:
    source: Path
    source_format: str
    output: Path
    output_format: str
    sizes: dict[str, int]
    files: list[str]
    warnings: list[str] = field(default_factory=list)  # the reader's, and what changed


def convert_corpus(source: str | Path, output: Path, to: str, fmt: str = "auto",
                   force: bool = False, options: ReadOptions = ReadOptions(),
                   scheme: str | None = None) -> Conversion:
    """Read `source` (format `fmt`), write it to the directory `output` in format `to`,
    its tags in `scheme` (a name in bio.SCHEMES; None: as read)."""
    if to not in WRITABLE:
        raise UsageError(f"Cannot write the {to} format", f"valid: {', '.join(WRITABLE)}")
    if scheme is not None and scheme not in SCHEMES:
        raise UsageError(f"Unknown tag scheme {scheme!r}", f"valid: {', '.join(SCHEMES)}")
    if scheme is not None and to == "jsonl":
        raise UsageError("jsonl keeps spans, not tags: it has no tag scheme",
                         "choose --to atis, conll or tokens, or leave --scheme out")
    output = Path(output)
    if output.exists() and not force:
        raise UsageError(f"{output} exists already",
                         "pass --force to replace it, or choose another output directory")
    if output.resolve() == resolve_corpus_path(source).resolve():
        raise UsageError("The output is the input", "write the converted corpus elsewhere")
    corpus = read_corpus(source, fmt, SPLITS, optional=("test",), options=options)
    if scheme is not None:
        corpus.splits = {name: ExampleArray(
            dataclasses.replace(e, tags=tuple(convert_tags(e.tags, scheme))) for e in examples)
            for name, examples in corpus.splits.items()}
    files = FORMATS[to].write(corpus.splits)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for name, content in files.items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
        changed = _read_back(tmp, to, corpus.splits, options)
        _replace(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Conversion(corpus.path, corpus.format, output, to,
                      {k: len(v) for k, v in corpus.splits.items()}, sorted(files),
                      corpus.warnings + changed)


def _read_back(folder: Path, fmt: str, splits: dict, options: ReadOptions) -> list[str]:
    """What reading the written files gives differently from what was read (none for a
    lossless conversion)."""
    issues = Issues()
    again = FORMATS[fmt].read(folder, ReadOptions(tokenizer=options.tokenizer), issues,
                              tuple(splits), ())
    differ = []
    for split, examples in splits.items():
        back = again.get(split, [])
        for i, example in enumerate(examples):
            other = back[i] if i < len(back) else None
            if other is None or (other.tokens, other.tags, other.intent) != (
                    example.tokens, example.tags, example.intent):
                differ.append(f"{example.source}: {' '.join(example.tokens)!r} reads back as "
                              f"{' '.join(other.tokens) if other else 'nothing'!r}")
    if not differ and not issues.problems:
        return []
    shown = "; ".join((issues.problems + differ)[:_SHOWN])
    return [f"{len(differ) + len(issues.problems)} utterances read back differently from "
            f"the {fmt} files (the format cannot keep them as they are): {shown}"]


def _replace(tmp: Path, output: Path) -> None:
    """Move the finished directory into place; an old one is removed only after."""
    if not output.exists():
        os.replace(tmp, output)
        return
    old = output.with_name(f".{output.name}.{os.getpid()}.old")
    os.replace(output, old)
    os.replace(tmp, output)
    shutil.rmtree(old) if old.is_dir() else old.unlink()

