"""Intent labels as sets of atomic intents (no torch).

A label that joins intents with `#` names a set: ATIS's `atis_flight#atis_airfare` asks for
flights and fares, and MixATIS / MixSNIPS join two or three intents per utterance the same
way. Two labels are the same intent when their sets are equal (`atis_airfare#atis_flight`
is `atis_flight#atis_airfare`), which is how intent accuracy is scored (analysis/intents.py)
and how the multi-label intent head (models/intent.py) names the sets it predicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

SEPARATOR = "#"


def intent_set(label: str) -> frozenset[str]:
    """`atis_flight#atis_airfare` -> {atis_flight, atis_airfare}; a plain label is a set
    of one."""
    return frozenset(part.strip() for part in label.split(SEPARATOR) if part.strip())


class IntentSets:
    """The atomic intents of a model's label vocabulary, and names for sets of them.

    `labels`: the whole-label vocabulary (Vocabs.intents, most frequent first). Atoms keep
    the order in which these labels first name them, so the most frequent come first.
    """

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.atoms = list(dict.fromkeys(a for label in labels for a in
                                        sorted(intent_set(label), key=label.find)))
        self.index = {atom: i for i, atom in enumerate(self.atoms)}
        # the most frequent training label of each set names it (labels come sorted)
        self._known: dict[frozenset[str], str] = {}
        for label in self.labels:
            self._known.setdefault(intent_set(label), label)

    def members(self, label: str) -> list[int]:
        """The atom ids of a label of the vocabulary."""
        return [self.index[a] for a in intent_set(label)]

    def name(self, atom_ids: Iterable[int]) -> str:
        """The label of a set of atoms: the training label with this set, when there is
        one, else the atoms joined by `#`, most frequent first."""
        atoms = frozenset(self.atoms[i] for i in atom_ids)
        known = self._known.get(atoms)
        if known is not None:
            return known
        return SEPARATOR.join(a for a in self.atoms if a in atoms)
