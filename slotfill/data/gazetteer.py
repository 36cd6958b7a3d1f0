"""Gazetteers: named lists of values (cities, months, ...) that give each word features.

`data.gazetteers: {NAME: FILE}` names one list per entry; FILE is a text file with one
entry per line (`#` starts a comment line), or the name of a list shipped with slotfill
(`slotfill/resources.py`: city_name, airport_name, month_name, day_name, day_number).
An entry may span several words (`salt lake city`). Each word gets two 0/1 features per
gazetteer: B (an entry starts here) and I (an entry continues here), for every entry it
is part of. Matching ignores case and a word's trailing dots (`St.` matches `st`).

A corpus may bring lists of its own: the lookup tables of a Rasa project, each named after
the entity it lists (data/formats/rasa.py). The lists travel inside the vocabularies of
every checkpoint (vocab.Vocabs), so a model computes its features the same way wherever
it runs. A gazetteer whose name is a slot type (the part of a slot name after its last
dot: `toloc.city_name` -> `city_name`) also supplies values for slot-value substitution
while training (training/augment.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from slotfill.data.tokenize import normalise
from slotfill.errors import DataError

Entry = tuple[str, ...]


def match_key(word: str) -> str:
    """The form of a word that matching compares."""
    stripped = word.lower().rstrip(".")
    return stripped or word


class Gazetteers:
    """Named lists of entries (each a tuple of words); `features` tags an utterance."""

    def __init__(self, lists: Mapping[str, Sequence[Entry]]) -> None:
        self.lists = {name: list(dict.fromkeys(tuple(e) for e in entries if e))
                      for name, entries in lists.items()}
        self.names = list(self.lists)
        # first word -> (gazetteer index, entry length, entry keys) for each entry
        self._starts: dict[str, list[tuple[int, int, Entry]]] = {}
        for g, entries in enumerate(self.lists.values()):
            for entry in entries:
                keys = tuple(match_key(w) for w in entry)
                self._starts.setdefault(keys[0], []).append((g, len(keys), keys))

    @property
    def size(self) -> int:
        """Features per word: B and I for each gazetteer."""
        return 2 * len(self.names)

    def features(self, tokens: Sequence[str]) -> list[list[float]]:
        """(T, size) 0/1 features: [B_1, I_1, B_2, I_2, ...] per word."""
        keys = [match_key(t) for t in tokens]
        out = [[0.0] * self.size for _ in tokens]
        for i, key in enumerate(keys):
            for g, n, entry in self._starts.get(key, ()):
                if tuple(keys[i:i + n]) == entry:
                    out[i][2 * g] = 1.0
                    for j in range(i + 1, i + n):
                        out[j][2 * g + 1] = 1.0
        return out

    def to_dict(self) -> dict:
        return {name: [" ".join(e) for e in entries] for name, entries in self.lists.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[str]]) -> Gazetteers:
        return cls({name: [tuple(e.split()) for e in entries] for name, entries in
                    data.items()})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Gazetteers) and self.to_dict() == other.to_dict()


def read_entries(path: Path) -> list[Entry]:
    """A gazetteer file's entries: split at whitespace, each word normalised as
    tokens are (data/tokenize.normalise: NFKC, case folding)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"Cannot read gazetteer {path}", str(exc)) from None
    return [tuple(normalise(word) for word in line.split()) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def gather_gazetteers(spec: Mapping[str, str] | None,
                      found: Mapping[str, Sequence[Entry]]) -> Gazetteers | None:
    """The gazetteers of `data.gazetteers` and those the corpus brings (Rasa's lookup
    tables: `found`), data.gazetteers winning a name both give; None without any."""
    configured = load_gazetteers(spec) if spec else None
    if not found:
        return configured
    return Gazetteers({**found, **(configured.lists if configured else {})})


def load_gazetteers(spec: Mapping[str, str]) -> Gazetteers:
    """The gazetteers of `data.gazetteers`: each value a file, or a shipped list's name."""
    from slotfill.resources import bundled_gazetteers

    shipped = bundled_gazetteers()
    lists, problems = {}, []
    for name, where in spec.items():
        path = Path(where)
        if not path.is_file():
            path = shipped.get(where, path)
        if not path.is_file():
            problems.append(f"data.gazetteers.{name}: no file {where!r}, and slotfill ships "
                            f"no list of that name (shipped: {', '.join(shipped)})")
            continue
        lists[name] = read_entries(path)
        if not lists[name]:
            problems.append(f"data.gazetteers.{name}: {path} has no entries")
    if problems:
        raise DataError("Cannot use the gazetteers", "\n".join(problems))
    return Gazetteers(lists)
