"""What every corpus reader produces: examples, and the problems it found on the way."""

from __future__ import annotations

from dataclasses import dataclass, field

from slotfill.config import parse_locales, parse_split

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Written:
    """How a file wrote an utterance, for `slotfill data convert`: its text and each
    token's character offsets in it (text[start:end] is the token as written)."""

    text: str
    offsets: tuple[tuple[int, int], ...]

    def words(self) -> list[str]:
        return [self.text[start:end] for start, end in self.offsets]


@dataclass(frozen=True)
class Example:
    tokens: tuple[str, ...]  # normalised, as the model reads them (data/tokenize.py)
    tags: tuple[str, ...]
    intent: str | None = None
    source: str | None = field(default=None, compare=False)  # "file:line", for messages
    written: Written | None = field(default=None, compare=False)  # for conversion


@dataclass(frozen=True)
class ReadOptions:
    """How to read a corpus beyond its path and format (the data.* config keys)."""

    tokenizer: str = "auto"  # data.tokenizer
    locales: tuple[str, ...] = ()  # data.locale: MASSIVE locales to read (all if empty)
    split: tuple[float, float, float] | None = None  # data.split, for unsplit corpora
    split_seed: int = 1  # data.split_seed

    @classmethod
    def from_config(cls, data) -> ReadOptions:
        """From a DataConfig (validated, so its strings parse)."""
        return cls(data.tokenizer, parse_locales(data.locale),
                   parse_split(data.split) if data.split is not None else None,
                   data.split_seed)


@dataclass
class Issues:
    """Problems found while reading: hard ones (`problems`: training refuses the corpus)
    and soft ones (`warnings`: training goes on). Each names file and line."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.problems.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
