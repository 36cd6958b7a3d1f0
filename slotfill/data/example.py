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
    strict: bool = False  # data.strict: a repair is an error

    @classmethod
    def from_config(cls, data) -> ReadOptions:
        """From a DataConfig (validated, so its strings parse)."""
        return cls(data.tokenizer, parse_locales(data.locale),
                   parse_split(data.split) if data.split is not None else None,
                   data.split_seed, data.strict)


@dataclass
class Issues:
    """Problems found while reading: hard ones (`problems`: training refuses the corpus),
    soft ones (`warnings`: training goes on) and repairs (what was changed to make an
    imperfect example usable: a warning, or with `strict` an error). Each names file and
    line."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    strict: bool = False  # data.strict
    repairs: int = 0
    unreadable: int = 0  # problems that are not repairs refused by `strict`
    renamed: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> (slot
    # name, where it was first seen): reported once, by finish()
    gazetteers: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)  # lists a
    # corpus brings (Rasa's lookup tables): name -> entries of normalised words

    def error(self, message: str) -> None:
        self.unreadable += 1
        self.problems.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def repair(self, message: str) -> None:
        self.repairs += 1
        (self.problems if self.strict else self.warnings).append(message)

    def finish(self, renaming_rule: str) -> None:
        """After every file is read: the labels renamed (one line), then the count."""
        if self.renamed:
            mapping = ", ".join(f"{label!r} -> {name!r} (first at {where})"
                                for label, (name, where) in self.renamed.items())
            self.repair(f"labels renamed to slot names ({renaming_rule}): {mapping}")
        counted = f"{self.repairs} repair{'' if self.repairs == 1 else 's'}"
        if self.repairs and self.strict:
            self.error(f"data.strict=true: {counted} refused (each an error above); without "
                       "data.strict they are made, with a warning each")
        elif self.repairs:
            self.warn(f"{counted}, each a warning above (data.strict=true refuses a corpus "
                      "that needs any)")
