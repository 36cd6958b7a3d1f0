"""Slot-value substitution (`train.augment`): every epoch, each training utterance is,
with probability p, rewritten with its slot values replaced by other values of the same
slot type, so that the model learns a slot from its context and from the gazetteer
features rather than from the handful of values the corpus happens to have.

A slot's type is the part of its name after the last dot (`toloc.city_name` and
`fromloc.city_name` are both `city_name`). Only types that a gazetteer is named after
(data.gazetteers) are substituted: a list of values says that they are interchangeable,
which is not so for every type (`less` and `cheapest` are both cost_relative). A new
value comes from the training data (every distinct value of that type, equally likely)
or, half of the time, from the gazetteer, whose values the corpus may never have. Words
the vocabulary lacks read as <unk> (with their characters and gazetteer features), as
unseen words do when the model is used. Each epoch's draws are seeded from the run's own
generator, saved with the run, so that a resumed run draws the same utterances.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

from slotfill.data.bio import detect_scheme, extract_spans, spans_to_tags
from slotfill.data.corpus import Example
from slotfill.data.gazetteer import Gazetteers
from slotfill.data.vocab import Vocab

Value = tuple[str, ...]


def slot_type(slot: str) -> str:
    return slot.rpartition(".")[2]


class SlotSubstitution:
    def __init__(self, examples: Sequence[Example], probability: float, tags: Vocab,
                 gazetteers: Gazetteers | None, seed: int) -> None:
        self.examples, self.probability = list(examples), probability
        self.generator = torch.Generator().manual_seed(seed)
        listed = gazetteers.lists if gazetteers is not None else {}
        values: dict[str, list[Value]] = {}  # slot type -> distinct training values
        for example in self.examples:
            for slot, start, end in extract_spans(example.tags):
                if slot_type(slot) in listed:
                    values.setdefault(slot_type(slot), []).append(example.tokens[start:end])
        self.pools = {kind: (list(dict.fromkeys(v)), listed[kind]) for kind, v in
                      values.items()}  # slot type -> (training values, gazetteer values)
        # slots whose values may span several words: I- (or E-, L-) tags the model knows
        self.multiword = {t[2:] for t in tags.itos if t[:2] in ("I-", "E-", "L-")}
        self.scheme = detect_scheme(e.tags for e in self.examples)  # rewritten tags' scheme
        self.rng = random.Random()

    def draw(self) -> list[Example]:
        """The training utterances of one epoch, some of them rewritten."""
        self.rng.seed(int(torch.randint(2**62, (), generator=self.generator)))
        return [self._rewrite(e) if self.rng.random() < self.probability else e
                for e in self.examples]

    def _rewrite(self, example: Example) -> Example:
        tokens: list[str] = []
        spans = []
        previous = 0
        for slot, start, end in extract_spans(example.tags):
            tokens += example.tokens[previous:start]
            value = self._value(slot, example.tokens[start:end])
            spans.append((slot, len(tokens), len(tokens) + len(value)))
            tokens += value
            previous = end
        tokens += example.tokens[previous:]
        return Example(tuple(tokens), tuple(spans_to_tags(spans, len(tokens), self.scheme)),
                       example.intent, example.source)

    def _value(self, slot: str, current: Value) -> Value:
        if slot_type(slot) not in self.pools:
            return current
        pool = self.rng.choice(self.pools[slot_type(slot)])
        if slot not in self.multiword:
            pool = [v for v in pool if len(v) == 1]
        return self.rng.choice(pool) if pool else current

    def substituted_types(self) -> list[str]:
        return sorted(self.pools)
