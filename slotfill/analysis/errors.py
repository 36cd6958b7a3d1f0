"""What a model gets wrong, utterance by utterance, counted from the same predictions and
with the same Counts as `slotfill eval`, so that every number agrees with its scores.

Each gold span is `exact` (a predicted span with its type, start and end), else judged by
the predicted spans that overlap it: `wrong type` (same boundaries), `wrong boundary`
(same type), `wrong type and boundary`, or `missed` when none overlaps. A predicted span
that overlaps no gold span is `spurious`. Slot confusion ("label transfer") pairs each
gold span's type with the type of the predicted span that judged it (`-` for none, and
for spurious spans on the gold side).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from slotfill.analysis.calibration import Reliability, reliability
from slotfill.analysis.evaluate import Predictions
from slotfill.analysis.intents import same_intent
from slotfill.analysis.metrics import Counts
from slotfill.data.bio import Span, extract_spans
from slotfill.data.corpus import Example

EXACT, WRONG_TYPE, WRONG_BOUNDARY, WRONG_BOTH, MISSED = (
    "exact", "wrong type", "wrong boundary", "wrong type and boundary", "missed")
SPURIOUS, INTENT, OTHER_TAGS = "spurious", "wrong intent", "same spans, other tags"
GOLD_KINDS = (EXACT, WRONG_TYPE, WRONG_BOUNDARY, WRONG_BOTH, MISSED)
ERROR_KINDS = (WRONG_TYPE, WRONG_BOUNDARY, WRONG_BOTH, MISSED, SPURIOUS, INTENT, OTHER_TAGS)
NONE = "-"  # no span on this side of a confusion pair
LENGTHS = ((1, 5), (6, 10), (11, 15), (16, 20), (21, None))  # token-count buckets


@dataclass
class Utterance:
    """One utterance as the model saw it, with its spans judged."""

    index: int  # position in the split
    tokens: tuple[str, ...]
    gold: list[Span]
    predicted: list[Span]
    judged: list[tuple[str, int | None]]  # per gold span: kind, index of its predicted span
    spurious: list[int]  # predicted spans overlapping no gold span
    confidence: list[float | None]  # per predicted span
    tags_right: bool
    gold_intent: str | None = None
    predicted_intent: str | None = None
    intent_confidence: float | None = None
    unseen: list[str] = field(default_factory=list)  # words the training data lacks

    @property
    def right_predictions(self) -> set[int]:
        """The predicted spans that are exactly a gold span."""
        return {match for kind, match in self.judged if kind == EXACT}

    @property
    def intent_right(self) -> bool:
        return self.predicted_intent is None or same_intent(self.gold_intent,
                                                            self.predicted_intent)

    @property
    def wrong(self) -> bool:
        """What sentence (or overall) accuracy counts against: a tag or the intent."""
        return not self.tags_right or not self.intent_right

    @property
    def kinds(self) -> list[str]:
        """The kinds of error in this utterance, in ERROR_KINDS order."""
        found = {kind for kind, _ in self.judged if kind != EXACT}
        found |= {SPURIOUS} if self.spurious else set()
        found |= {INTENT} if not self.intent_right else set()
        if not self.tags_right and not found - {INTENT}:
            found.add(OTHER_TAGS)  # e.g. B-x where the gold has an ill-formed I-x
        return [kind for kind in ERROR_KINDS if kind in found]

    def errors(self) -> int:
        return (sum(kind != EXACT for kind, _ in self.judged) + len(self.spurious)
                + (not self.intent_right))

    def severity(self) -> tuple:
        """Sort key, worst first: most errors, then the most confident wrong span."""
        right = self.right_predictions
        sure = max((p or 0.0 for i, p in enumerate(self.confidence) if i not in right),
                   default=0.0)
        return (-self.errors(), -sure, self.index)

    def to_dict(self) -> dict:
        """JSON-ready: the text, gold and predicted spans, error kinds, intents."""
        def span(s: Span) -> dict:
            return {"slot": s[0], "start": s[1], "end": s[2],
                    "value": " ".join(self.tokens[s[1]:s[2]])}
        result = {"index": self.index, "text": " ".join(self.tokens),
                  "tokens": list(self.tokens), "errors": self.kinds,
                  "gold": [{**span(s), "judged": kind}
                           for s, (kind, _) in zip(self.gold, self.judged)],
                  "predicted": [{**span(s), "confidence": p,
                                 **({"judged": SPURIOUS} if i in self.spurious else {})}
                                for i, (s, p) in enumerate(zip(self.predicted,
                                                               self.confidence))],
                  "unseen": self.unseen}
        if self.predicted_intent is not None:
            result.update(gold_intent=self.gold_intent, predicted_intent=self.predicted_intent,
                          intent_confidence=self.intent_confidence)
        return result


def judge(gold: Sequence[Span], predicted: Sequence[Span]
          ) -> tuple[list[tuple[str, int | None]], list[int]]:
    """Each gold span's kind and the predicted span that decided it; the spurious ones."""
    judged = []
    for kind, start, end in gold:
        best, best_key = None, None
        for i, (p_kind, p_start, p_end) in enumerate(predicted):
            overlap = min(end, p_end) - max(start, p_start)
            if overlap <= 0:
                continue
            same_type, same_bounds = p_kind == kind, (p_start, p_end) == (start, end)
            verdict = (EXACT if same_type and same_bounds else WRONG_TYPE if same_bounds
                       else WRONG_BOUNDARY if same_type else WRONG_BOTH)
            key = (GOLD_KINDS.index(verdict), -overlap, i)
            if best_key is None or key < best_key:
                best, best_key = (verdict, i), key
        judged.append(best or (MISSED, None))
    spurious = [i for i, (_, p_start, p_end) in enumerate(predicted)
                if not any(min(end, p_end) > max(start, p_start) for _, start, end in gold)]
    return judged, spurious


@dataclass
class ErrorAnalysis:
    utterances: list[Utterance]
    counts: Counts  # exactly what `slotfill eval` scores
    breakdown: dict[str, Counter]  # "all" and each slot type: kind -> spans
    slot_confusion: Counter  # (gold type or NONE, predicted type or NONE) -> spans
    intent_confusion: Counter | None  # (gold, predicted) -> utterances
    by_length: dict[str, Counts]
    by_unseen: dict[str, Counts]
    calibration: Reliability | None  # predicted spans: confidence vs exactly right
    intent_calibration: Reliability | None

    @property
    def wrong(self) -> list[Utterance]:
        return sorted((u for u in self.utterances if u.wrong), key=Utterance.severity)

    def to_dict(self) -> dict:
        """Everything as JSON-ready data (scores as metrics.Counts.scores gives them)."""
        def pairs(counter: Counter | None):
            return None if counter is None else [
                {"gold": g, "predicted": p, "count": n}
                for (g, p), n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]
        return {
            "scores": self.counts.scores(),
            "breakdown": {k: dict(v) for k, v in self.breakdown.items()},
            "slot_confusion": pairs(self.slot_confusion),
            "intent_confusion": pairs(self.intent_confusion),
            # the buckets without partial matches: they would triple the report's data
            "by_length": {k: c.scores(semeval=False) for k, c in self.by_length.items()},
            "by_unseen": {k: c.scores(semeval=False) for k, c in self.by_unseen.items()},
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "intent_calibration": (self.intent_calibration.to_dict()
                                   if self.intent_calibration else None),
            "wrong": [u.to_dict() for u in self.wrong],
        }


def analyse(examples: Sequence[Example], predicted: Predictions,
            known_words: set[str] | frozenset[str]) -> ErrorAnalysis:
    """Judge every utterance of a split against its predictions. `known_words`: the
    words of the training data (the checkpoint's vocabulary)."""
    counts = Counts()
    by_length = {_length_label(lo, hi): Counts() for lo, hi in LENGTHS}
    by_unseen = {"all words seen in training": Counts(), "some word unseen": Counts()}
    breakdown: dict[str, Counter] = {"all": Counter()}
    slot_confusion: Counter = Counter()
    intent_confusion = Counter() if predicted.intents is not None else None
    utterances = []
    for i, (example, tags) in enumerate(zip(examples, predicted.tags)):
        intent = predicted.intents[i] if predicted.intents is not None else None
        utterance = _utterance(i, example, tags, intent, predicted, known_words)
        utterances.append(utterance)
        for bucket in (counts, by_length[_bucket(len(example.tokens))],
                       by_unseen["some word unseen" if utterance.unseen
                                 else "all words seen in training"]):
            bucket.add(example.tags, tags, example.intent, intent)
        for (kind, start, end), (verdict, match) in zip(utterance.gold, utterance.judged):
            for key in ("all", kind):
                breakdown.setdefault(key, Counter())[verdict] += 1
            slot_confusion[kind, utterance.predicted[match][0] if match is not None
                           else NONE] += 1
        for j in utterance.spurious:
            for key in ("all", utterance.predicted[j][0]):
                breakdown.setdefault(key, Counter())[SPURIOUS] += 1
            slot_confusion[NONE, utterance.predicted[j][0]] += 1
        if intent_confusion is not None:
            intent_confusion[example.intent or NONE, intent] += 1
    return ErrorAnalysis(utterances, counts, breakdown, slot_confusion, intent_confusion,
                         by_length, by_unseen, *_calibrations(utterances, predicted))


def _utterance(i: int, example: Example, tags: list[str], intent: str | None,
               predicted: Predictions, known_words) -> Utterance:
    gold, found = extract_spans(example.tags), extract_spans(tags)
    judged, spurious = judge(gold, found)
    sure = predicted.confidence[i] if predicted.confidence is not None else {}
    return Utterance(
        i, tuple(example.tokens), gold, found, judged, spurious,
        [sure.get((start, end)) for _, start, end in found], list(example.tags) == tags,
        example.intent if intent is not None else None, intent,
        predicted.intent_confidence[i] if predicted.intent_confidence is not None else None,
        sorted({t for t in example.tokens if t not in known_words}))


def _calibrations(utterances: list[Utterance], predicted: Predictions
                  ) -> tuple[Reliability | None, Reliability | None]:
    spans = intents = None
    if predicted.confidence is not None:
        pairs = [(p, j in u.right_predictions)
                 for u in utterances for j, p in enumerate(u.confidence) if p is not None]
        spans = reliability([p for p, _ in pairs], [right for _, right in pairs])
    if predicted.intent_confidence is not None:
        intents = reliability([u.intent_confidence for u in utterances],
                              [u.intent_right for u in utterances])
    return spans, intents


def _length_label(lo: int, hi: int | None) -> str:
    return f"{lo}-{hi} words" if hi is not None else f"{lo}+ words"


def _bucket(n: int) -> str:
    for lo, hi in LENGTHS:
        if hi is None or n <= hi:
            return _length_label(lo, hi)
    raise AssertionError("LENGTHS ends open")
