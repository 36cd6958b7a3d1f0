"""Partial-match scores: the four scenarios of SemEval-2013 task 9.1 (strict, exact
boundary, partial boundary, type), overall and per slot type, counted as nervaluate 1.2
counts them (stdlib only).

Each predicted span is, per scenario, correct (COR), incorrect (INC), partial (PAR) or
spurious (SPU); each gold span left unmatched is missed (MIS). Predicted spans are taken
in order and each claims at most one gold span, the first unclaimed one that fits:

    strict   COR: same type and boundaries;      INC: overlaps some gold span
    exact    COR: same boundaries (any type);    INC: overlaps some gold span
    partial  COR: same boundaries (any type);    PAR: overlaps some gold span
    type     COR: same type, overlapping (the closest boundaries win); INC: overlaps
             a gold span of another type

ACT = COR + INC + PAR + SPU (predicted spans), POS = COR + INC + PAR + MIS (gold spans);
precision = COR / ACT and recall = COR / POS for strict and exact, (COR + 0.5 PAR) / ACT
and (COR + 0.5 PAR) / POS for partial and type (where PAR is always 0). Per slot type,
the scenarios run on the spans of that type alone, as nervaluate runs them: a span of
the wrong type counts as missed for the gold type and spurious for the predicted one.
Strict scores therefore equal conlleval's (metrics.py), overall and per type.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from slotfill.data.bio import Span

SCENARIOS = ("strict", "exact", "partial", "type")
OUTCOMES = ("correct", "incorrect", "partial", "missed", "spurious")


def outcomes(gold: Sequence[Span], predicted: Sequence[Span], scenario: str) -> Counter:
    """The five outcome counts of one utterance's spans (in order of start) in one
    scenario."""
    claimed: set[int] = set()
    found: Counter = Counter()
    near_miss = "partial" if scenario == "partial" else "incorrect"
    for kind, start, end in predicted:
        match, near, distance = None, None, None
        for i, (gold_kind, gold_start, gold_end) in enumerate(gold):
            if i in claimed or not (start < gold_end and gold_start < end):
                continue  # claimed already, or no shared token
            if scenario == "type":
                if gold_kind == kind:  # the closest boundaries; on a tie the first
                    gap = abs(start - gold_start) + abs(end - gold_end)
                    if distance is None or gap < distance:
                        match, distance = i, gap
                elif near is None:
                    near = i
                continue
            if (start, end) == (gold_start, gold_end) and (scenario != "strict"
                                                           or kind == gold_kind):
                match = i
                break
            if near is None:
                near = i
        if match is not None:
            found["correct"] += 1
            claimed.add(match)
        elif near is not None:
            found[near_miss] += 1
            claimed.add(near)
        else:
            found["spurious"] += 1
    if len(gold) > len(claimed):
        found["missed"] = len(gold) - len(claimed)
    return found


@dataclass
class SemEvalCounts:
    """Outcome counts of every scenario, overall and per slot type; they add up across
    batches and processes like metrics.Counts."""

    overall: Counter = field(default_factory=Counter)  # (scenario, outcome) -> n
    per_slot: Counter = field(default_factory=Counter)  # (type, scenario, outcome) -> n

    def add(self, gold: Sequence[Span], predicted: Sequence[Span]) -> None:
        """One utterance's gold and predicted spans (data.bio.extract_spans)."""
        for scenario in SCENARIOS:
            for outcome, n in outcomes(gold, predicted, scenario).items():
                self.overall[scenario, outcome] += n
        for kind in {span[0] for span in (*gold, *predicted)}:
            mine = ([s for s in gold if s[0] == kind], [s for s in predicted if s[0] == kind])
            for scenario in SCENARIOS:
                for outcome, n in outcomes(*mine, scenario).items():
                    self.per_slot[kind, scenario, outcome] += n

    def merge(self, other: SemEvalCounts) -> SemEvalCounts:
        return SemEvalCounts(self.overall + other.overall, self.per_slot + other.per_slot)

    def scores(self) -> dict:
        """{scenario: scores} overall, and `per_slot`: {type: {scenario: scores}}, each
        with the five counts, actual, possible, precision, recall and f1 (fractions)."""
        kinds = sorted({kind for kind, _, _ in self.per_slot})
        return {**{s: scenario_scores(self.overall, s) for s in SCENARIOS},
                "per_slot": {kind: {s: scenario_scores(self.per_slot, s, kind)
                                    for s in SCENARIOS} for kind in kinds}}


def scenario_scores(counts: Counter, scenario: str, kind: str | None = None) -> dict:
    """One scenario's counts and scores, from `counts` keyed (scenario, outcome), or
    (kind, scenario, outcome) when `kind` is given."""
    key = (lambda o: (scenario, o)) if kind is None else (lambda o: (kind, scenario, o))
    n = {outcome: counts[key(outcome)] for outcome in OUTCOMES}
    actual = n["correct"] + n["incorrect"] + n["partial"] + n["spurious"]
    possible = n["correct"] + n["incorrect"] + n["partial"] + n["missed"]
    # nervaluate's arithmetic, step for step, so that the floats agree exactly
    right = n["correct"] + 0.5 * n["partial"] if scenario in ("partial", "type") \
        else n["correct"]
    precision = right / actual if actual > 0 else 0
    recall = right / possible if possible > 0 else 0
    f1 = 2 * (precision * recall) / (precision + recall) if precision + recall > 0 else 0
    return {**n, "actual": actual, "possible": possible, "precision": float(precision),
            "recall": float(recall), "f1": float(f1)}
