"""Deterministic train/valid/test splits for corpora that come without them (Rasa data,
a single JSON Lines file), stratified by intent.

Only `random.Random(seed).random()` is used, whose sequence Python guarantees across
versions, so a split is the same on every machine.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def shuffled(items: Sequence[T], rng: random.Random) -> list[T]:
    """Fisher-Yates on `rng.random()` alone."""
    out = list(items)
    for i in range(len(out) - 1, 0, -1):
        j = min(int(rng.random() * (i + 1)), i)
        out[i], out[j] = out[j], out[i]
    return out


def stratified_split(examples: Sequence, shares: tuple[float, float, float],
                     seed: int) -> dict[str, list]:
    """Examples dealt to train, valid and test in the given shares, each intent spread
    over the splits in those shares (its examples shuffled first); every split keeps the
    examples' original order."""
    rng = random.Random(seed)
    groups: dict[str, list[int]] = {}
    for i, example in enumerate(examples):
        groups.setdefault(example.intent or "", []).append(i)
    names = ("train", "valid", "test")
    dealt = {name: [] for name in names}
    position = 0
    for intent in sorted(groups):
        for i in shuffled(groups[intent], rng):
            position += 1
            # the split furthest behind its share so far (ties: train, valid, test)
            name = max(names, key=lambda n: shares[names.index(n)] * position - len(dealt[n]))
            dealt[name].append(i)
    return {name: [examples[i] for i in sorted(dealt[name])] for name in names}
