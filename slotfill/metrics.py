"""Span-level precision/recall/F1 exactly as the conlleval script computes them (stdlib only).

conlleval splits a tag at its first '-' into a prefix (B, I, E, O, ...) and a type, decides
where chunks start and end with the rules below (ill-formed BIO such as an `I-x` without a
`B-x` starts a new chunk), and counts a predicted chunk as correct when a gold chunk has the
same type, start and end. Scores are micro-averaged; a type with no predicted chunks has
precision 0. Utterances are separate: no chunk crosses an utterance boundary.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

Span = tuple[str, int, int]  # (type, start, end) with `end` exclusive, in tokens


@functools.lru_cache(maxsize=4096)
def split_tag(tag: str) -> tuple[str, str]:
    """'B-toloc.city_name' -> ('B', 'toloc.city_name'); 'O' -> ('O', '')."""
    prefix, dash, kind = tag.partition("-")
    return (prefix, kind) if dash else (tag, "")


def _end_of_chunk(prev: str, tag: str, prev_type: str, kind: str) -> bool:
    # conlleval's endOfChunk, rule for rule
    return ((prev in ("B", "I") and tag in ("B", "O"))
            or (prev == "E" and tag in ("E", "I", "O"))
            or (prev not in ("O", ".") and prev_type != kind)
            or prev in ("[", "]"))


def _start_of_chunk(prev: str, tag: str, prev_type: str, kind: str) -> bool:
    # conlleval's startOfChunk, rule for rule
    return ((tag == "B" and prev in ("B", "I", "O"))
            or (tag == "I" and prev in ("O", "E"))
            or (tag == "E" and prev in ("E", "O"))
            or (tag not in ("O", ".") and prev_type != kind)
            or tag in ("[", "]"))


def extract_spans(tags: Sequence[str]) -> list[Span]:
    """The chunks of one utterance, as conlleval delimits them."""
    spans: list[Span] = []
    prev, prev_type, start = "O", "", None
    for i, tag in enumerate([*tags, "O"]):  # a trailing O closes the last chunk
        prefix, kind = split_tag(tag)
        if start is not None and _end_of_chunk(prev, prefix, prev_type, kind):
            spans.append((prev_type, start, i))
            start = None
        if i < len(tags) and _start_of_chunk(prev, prefix, prev_type, kind):
            if start is not None:  # conlleval counts every start; close what is open
                spans.append((prev_type, start, i))
            start = i
        prev, prev_type = prefix, kind
    return spans


@dataclass
class Counts:
    """Sufficient statistics for every score; counts add up across batches and processes."""

    correct: Counter = field(default_factory=Counter)  # type -> chunks right
    gold: Counter = field(default_factory=Counter)  # type -> gold chunks
    predicted: Counter = field(default_factory=Counter)  # type -> predicted chunks
    tokens: int = 0
    tokens_correct: int = 0
    sentences: int = 0
    sentences_correct: int = 0  # every tag right
    intents_correct: int | None = None  # None when intents are not predicted
    overall_correct: int | None = None  # every tag and the intent right

    def add(self, gold_tags: Sequence[str], pred_tags: Sequence[str],
            gold_intent: str | None = None, pred_intent: str | None = None) -> None:
        if len(gold_tags) != len(pred_tags):
            raise ValueError(f"expected {len(gold_tags)} predicted tags, got {len(pred_tags)}")
        gold_spans, pred_spans = set(extract_spans(gold_tags)), set(extract_spans(pred_tags))
        self.gold.update(kind for kind, _, _ in gold_spans)
        self.predicted.update(kind for kind, _, _ in pred_spans)
        self.correct.update(kind for kind, _, _ in gold_spans & pred_spans)
        right = sum(g == p for g, p in zip(gold_tags, pred_tags))
        self.tokens += len(gold_tags)
        self.tokens_correct += right
        self.sentences += 1
        all_tags_right = right == len(gold_tags)
        self.sentences_correct += all_tags_right
        if pred_intent is not None:
            intent_right = pred_intent == gold_intent
            self.intents_correct = (self.intents_correct or 0) + intent_right
            self.overall_correct = (self.overall_correct or 0) + (intent_right and all_tags_right)

    def merge(self, other: Counts) -> Counts:
        def plus(a: int | None, b: int | None) -> int | None:
            return None if a is None and b is None else (a or 0) + (b or 0)
        return Counts(self.correct + other.correct, self.gold + other.gold,
                      self.predicted + other.predicted, self.tokens + other.tokens,
                      self.tokens_correct + other.tokens_correct,
                      self.sentences + other.sentences,
                      self.sentences_correct + other.sentences_correct,
                      plus(self.intents_correct, other.intents_correct),
                      plus(self.overall_correct, other.overall_correct))

    def scores(self) -> dict:
        """Fractions in [0, 1]: precision, recall, f1, token/sentence accuracy, per_slot,
        and intent/overall accuracy when intents were predicted."""
        result = {**_prf(sum(self.correct.values()), sum(self.gold.values()),
                         sum(self.predicted.values())),
                  "token_accuracy": _ratio(self.tokens_correct, self.tokens),
                  "sentence_accuracy": _ratio(self.sentences_correct, self.sentences),
                  "sentences": self.sentences, "tokens": self.tokens}
        if self.intents_correct is not None:
            result["intent_accuracy"] = _ratio(self.intents_correct, self.sentences)
            result["overall_accuracy"] = _ratio(self.overall_correct or 0, self.sentences)
        kinds = sorted(set(self.gold) | set(self.predicted))
        result["per_slot"] = {
            kind: {**_prf(self.correct[kind], self.gold[kind], self.predicted[kind]),
                   "support": self.gold[kind]}
            for kind in kinds}
        return result


def score(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
          gold_intents: Sequence[str] | None = None,
          predicted_intents: Sequence[str] | None = None) -> dict:
    """Scores of predicted tag sequences against gold ones (see Counts.scores)."""
    if len(gold) != len(predicted):
        raise ValueError(f"expected {len(gold)} predicted sequences, got {len(predicted)}")
    counts = Counts()
    for i, (g, p) in enumerate(zip(gold, predicted)):
        counts.add(g, p, gold_intents[i] if predicted_intents is not None else None,
                   predicted_intents[i] if predicted_intents is not None else None)
    return counts.scores()


def _prf(correct: int, gold: int, predicted: int) -> dict:
    precision, recall = _ratio(correct, predicted), _ratio(correct, gold)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0
