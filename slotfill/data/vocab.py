"""String <-> id tables for words, characters, tags and intents (no torch)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from slotfill.data.compact import ExampleArray
from slotfill.data.gazetteer import Gazetteers
from slotfill.data.subwords import Subwords

PAD, UNK = "<pad>", "<unk>"


class Vocab:
    """An ordered list of strings. With `specials`, id 0 is <pad> and id 1 is <unk>, and
    unknown strings map to <unk>; without, unknown strings are a KeyError."""

    def __init__(self, items: Iterable[str], specials: bool = True) -> None:
        self.specials = specials
        self.itos: list[str] = ([PAD, UNK] if specials else []) + [
            s for s in items if not (specials and s in (PAD, UNK))]
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("duplicate entries in vocabulary")

    @classmethod
    def build(cls, sequences: Iterable[Iterable[str]], specials: bool = True,
              min_freq: int = 1) -> Vocab:
        """Most frequent first, ties in first-seen order (deterministic)."""
        return cls.from_counts(Counter(s for seq in sequences for s in seq), specials,
                               min_freq)

    @classmethod
    def from_counts(cls, counts: Counter, specials: bool = True, min_freq: int = 1) -> Vocab:
        """From occurrence counts in first-seen order, as `build` orders them."""
        items = [s for s, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n >= min_freq]
        return cls(items, specials=specials)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, item: str) -> bool:
        return item in self.stoi

    def index(self, item: str) -> int:
        if self.specials:
            return self.stoi.get(item, 1)
        return self.stoi[item]

    def encode(self, items: Iterable[str]) -> list[int]:
        return [self.index(s) for s in items]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    def extend(self, items: Iterable[str]) -> tuple[Vocab, list[str]]:
        """This vocabulary with the new `items` appended (existing ids unchanged), and
        the items that were added."""
        added = [s for s in dict.fromkeys(items) if s not in self.stoi]
        kept = self.itos[2:] if self.specials else self.itos  # Vocab adds the specials
        return Vocab(kept + added, specials=self.specials), added

    def to_dict(self) -> dict:
        return {"itos": list(self.itos), "specials": self.specials}

    @classmethod
    def from_dict(cls, data: dict) -> Vocab:
        return cls(data["itos"], specials=data["specials"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.to_dict() == other.to_dict()


class Vocabs:
    """The vocabularies a model was trained with, and its gazetteers (data.gazetteers),
    which give words features; stored in every checkpoint. `pretrained_words`: how many
    words at the end of `words` come from a vectors file alone (model.embeddings), never
    from the training data. `subwords`: a transformer encoder's tokenizer
    (model.transformer)."""

    def __init__(self, words: Vocab, tags: Vocab, intents: Vocab | None = None,
                 chars: Vocab | None = None, pretrained_words: int = 0,
                 gazetteers: Gazetteers | None = None,
                 subwords: Subwords | None = None) -> None:
        self.words, self.tags, self.intents, self.chars = words, tags, intents, chars
        self.pretrained_words = pretrained_words
        self.gazetteers = gazetteers
        self.subwords = subwords

    def with_pretrained(self, words: list[str]) -> Vocabs:
        """These vocabularies with `words` (from a vectors file) appended to `words`."""
        extended, added = self.words.extend(words)
        return Vocabs(extended, self.tags, self.intents, self.chars, len(added),
                      self.gazetteers, self.subwords)

    @classmethod
    def build(cls, examples: Iterable, chars: bool = False,
              gazetteers: Gazetteers | None = None) -> Vocabs:
        """From training examples; `chars` adds a character vocabulary."""
        if isinstance(examples, ExampleArray):
            return cls._from_arrays(examples, chars, gazetteers)
        examples = list(examples)
        intents = [e.intent for e in examples if e.intent is not None]
        return cls(Vocab.build(e.tokens for e in examples),
                   Vocab.build((e.tags for e in examples), specials=False),
                   Vocab.build([intents], specials=False) if intents else None,
                   Vocab.build(t for e in examples for t in e.tokens) if chars else None,
                   gazetteers=gazetteers)

    @classmethod
    def _from_arrays(cls, examples: ExampleArray, chars: bool,
                     gazetteers: Gazetteers | None) -> Vocabs:
        """As `build` orders them, from the arrays' counts (no Example is made)."""
        words = examples.counts("words")
        intents = examples.counts("intents")
        spelled: Counter = Counter()
        if chars:  # a word's first sighting precedes its characters' in the corpus
            for word, n in words.items():
                for c in word:
                    spelled[c] += n
        return cls(Vocab.from_counts(words), Vocab.from_counts(examples.counts("tags"), False),
                   Vocab.from_counts(intents, False) if intents else None,
                   Vocab.from_counts(spelled) if chars else None, gazetteers=gazetteers)

    def extend(self, other: Vocabs) -> tuple[Vocabs, dict[str, list[str]]]:
        """These vocabularies extended by what `other` holds beyond them (existing ids
        unchanged, so a model's weights still fit), and what was added, per kind."""
        merged, added = {}, {}
        for name in ("words", "tags", "intents", "chars"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is None or theirs is None:
                merged[name] = mine
                continue
            merged[name], added[name] = mine.extend(theirs.itos)
        return Vocabs(**merged, gazetteers=self.gazetteers, subwords=self.subwords), added

    def to_dict(self) -> dict:
        out = {name: vocab.to_dict() if vocab else None for name, vocab in
               (("words", self.words), ("tags", self.tags), ("intents", self.intents),
                ("chars", self.chars))}
        if self.pretrained_words:
            out["pretrained_words"] = self.pretrained_words
        out["gazetteers"] = self.gazetteers.to_dict() if self.gazetteers else None
        if self.subwords is not None:
            out["subwords"] = self.subwords.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Vocabs:
        optional = {k: Vocab.from_dict(data[k]) if data.get(k) else None
                    for k in ("intents", "chars")}
        gazetteers = Gazetteers.from_dict(data["gazetteers"]) if data.get("gazetteers") \
            else None
        subwords = Subwords.from_dict(data["subwords"]) if data.get("subwords") else None
        return cls(Vocab.from_dict(data["words"]), Vocab.from_dict(data["tags"]), **optional,
                   pretrained_words=int(data.get("pretrained_words", 0)),
                   gazetteers=gazetteers, subwords=subwords)
