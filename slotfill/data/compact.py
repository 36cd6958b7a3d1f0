"""A split of a corpus as compact arrays: `ExampleArray`, a sequence of Examples that keeps
each distinct string once and each utterance as ids into those tables.

An 11-word utterance held as an Example (tuples of str, a source string, its written
form) costs about 3 KB of Python objects; here it costs about 150 bytes, so a million
utterances fit in a few hundred MB. Indexing or iterating builds the Examples on demand
(callers see the same Examples the readers made); the vocabularies, the tensors
(data/batching.py) and the corpus statistics (data/check.py) read the arrays directly,
without making any.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

from slotfill.data.example import Example, Written

_NONE = -1  # an absent intent, or a source without a line number


class StringTable:
    """Distinct strings in first-seen order, and their ids."""

    def __init__(self) -> None:
        self.strings: list[str] = []
        self.ids: dict[str, int] = {}

    def id(self, s: str) -> int:
        found = self.ids.get(s)
        if found is None:
            found = self.ids[s] = len(self.strings)
            self.strings.append(s)
        return found

    def __len__(self) -> int:
        return len(self.strings)


class ExampleArray(Sequence[Example]):
    """Examples stored as arrays: appended one at a time (readers), or built from any
    iterable of Examples."""

    def __init__(self, examples: Iterable[Example] = ()) -> None:
        self.words, self.tags = StringTable(), StringTable()  # normalised tokens; tags
        self.intents, self.spellings = StringTable(), StringTable()  # spellings: written
        self._places = StringTable()  # an example's source up to ":line"
        self.word_ids, self.tag_ids = array("i"), array("i")  # (W,) all tokens, in order
        self._spelling_ids = array("i")  # (W,) the written words of regular examples
        self.starts = array("q", [0])  # (N + 1,) utterance i is words[starts[i]:starts[i+1]]
        self.intent_ids = array("i")  # (N,) _NONE without an intent
        self._place_ids, self._lines = array("i"), array("q")  # (N,) of `source`
        # written forms that are not the words joined by single spaces (or None)
        self._irregular: dict[int, Written | None] = {}
        self.extend(examples)

    def append(self, example: Example) -> None:
        n = len(example.tokens)
        if len(example.tags) != n:
            raise ValueError(f"{n} tokens but {len(example.tags)} tags")
        words, tags = self.words.id, self.tags.id
        self.word_ids.extend([words(w) for w in example.tokens])
        self.tag_ids.extend([tags(t) for t in example.tags])
        written = example.written
        spelled = written.words() if written is not None else None
        if spelled is not None and len(spelled) == n and _regular(written, spelled):
            self._spelling_ids.extend([self.spellings.id(w) for w in spelled])
        else:
            self._spelling_ids.extend([_NONE] * n)
            self._irregular[len(self)] = written
        self.starts.append(self.starts[-1] + n)
        self.intent_ids.append(_NONE if example.intent is None
                               else self.intents.id(example.intent))
        place, line = _split_source(example.source)
        self._place_ids.append(_NONE if place is None else self._places.id(place))
        self._lines.append(line)

    def extend(self, examples: Iterable[Example]) -> None:
        for example in examples:
            self.append(example)

    def __len__(self) -> int:
        return len(self.intent_ids)

    @overload
    def __getitem__(self, i: int) -> Example: ...
    @overload
    def __getitem__(self, i: slice) -> ExampleArray: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return ExampleArray(self[j] for j in range(*i.indices(len(self))))
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("example index out of range")
        a, b = self.starts[i], self.starts[i + 1]
        tokens = tuple(self.words.strings[j] for j in self.word_ids[a:b])
        tags = tuple(self.tags.strings[j] for j in self.tag_ids[a:b])
        intent = self.intent_ids[i]
        place, line = self._place_ids[i], self._lines[i]
        source = None if place == _NONE else (
            self._places.strings[place] + ("" if line == _NONE else f":{line}"))
        if i in self._irregular:
            written = self._irregular[i]
        else:
            written = _joined([self.spellings.strings[j] for j in self._spelling_ids[a:b]])
        return Example(tokens, tags, None if intent == _NONE else self.intents.strings[intent],
                       source, written)

    def __iter__(self) -> Iterator[Example]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # mutable, like a list

    def __repr__(self) -> str:
        return f"ExampleArray({len(self)} examples, {len(self.word_ids)} tokens)"

    # -- read without making Examples ------------------------------------------------------

    def lengths(self) -> list[int]:
        """Tokens per utterance."""
        s = self.starts
        return [s[i + 1] - s[i] for i in range(len(self))]

    def rows(self, field: str) -> Iterator[tuple[int, ...]]:
        """Each utterance's word or tag ids (`field`: "words" or "tags"), in order."""
        s, ids = self.starts, {"words": self.word_ids, "tags": self.tag_ids}[field]
        return (tuple(ids[s[i]:s[i + 1]]) for i in range(len(self)))

    def counts(self, field: str) -> Counter:
        """Occurrences of each word, tag or intent (`field`), in first-seen order."""
        table, ids = {"words": (self.words, self.word_ids), "tags": (self.tags, self.tag_ids),
                      "intents": (self.intents, self.intent_ids)}[field]
        by_id = Counter(ids)
        return Counter({s: by_id[i] for i, s in enumerate(table.strings) if by_id[i]})

    def tag_sequences(self) -> Counter:
        """Each distinct tag sequence and how many utterances have it, in first-seen order."""
        strings = self.tags.strings
        return Counter({tuple(strings[j] for j in ids): n
                        for ids, n in Counter(self.rows("tags")).items()})


def compact(examples: Iterable[Example]) -> ExampleArray:
    """`examples` as an ExampleArray (itself if it is one)."""
    return examples if isinstance(examples, ExampleArray) else ExampleArray(examples)


def tag_sequences(examples: Iterable[Example]) -> Counter:
    """Each distinct tag sequence of `examples` and its count, in first-seen order."""
    if isinstance(examples, ExampleArray):
        return examples.tag_sequences()
    return Counter(e.tags for e in examples)


def _split_source(source: str | None) -> tuple[str | None, int]:
    """"file:12" -> ("file", 12); anything else is kept whole, without a line."""
    if source is None:
        return None, _NONE
    place, colon, line = source.rpartition(":")
    if colon and line.isdigit() and line == str(int(line)):
        return place, int(line)
    return source, _NONE


def _joined(words: list[str]) -> Written:
    """The written form of words joined by single spaces."""
    offsets, position = [], 0
    for word in words:
        offsets.append((position, position + len(word)))
        position += len(word) + 1
    return Written(" ".join(words), tuple(offsets))


def _regular(written: Written, spelled: list[str]) -> bool:
    return written.text == " ".join(spelled) and written == _joined(spelled)
