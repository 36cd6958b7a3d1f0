"""Span-level precision/recall/F1 exactly as the conlleval script computes them (stdlib only).

Chunks are delimited as conlleval does it (data/bio.py), and a predicted chunk is correct
when a gold chunk has the same type, start and end. Scores are micro-averaged; a type with
no predicted chunks has precision 0. Utterances are separate: no chunk crosses an
utterance boundary. The SemEval-2013 partial-match scores (semeval.py) are counted beside
them, from the same chunks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from slotfill.analysis.intents import same_intent, same_string
from slotfill.analysis.semeval import SemEvalCounts
from slotfill.data.bio import extract_spans


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
    # the same two, with the intent right only as the exact string (analysis/intents.py)
    intent_strings_correct: int | None = None
    overall_strings_correct: int | None = None
    semeval: SemEvalCounts = field(default_factory=SemEvalCounts)  # partial matches

    def add(self, gold_tags: Sequence[str], pred_tags: Sequence[str],
            gold_intent: str | None = None, pred_intent: str | None = None) -> None:
        if len(gold_tags) != len(pred_tags):
            raise ValueError(f"expected {len(gold_tags)} predicted tags, got {len(pred_tags)}")
        gold_chunks, pred_chunks = extract_spans(gold_tags), extract_spans(pred_tags)
        self.semeval.add(gold_chunks, pred_chunks)
        gold_spans, pred_spans = set(gold_chunks), set(pred_chunks)
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
            as_set, as_string = same_intent(gold_intent, pred_intent), \
                same_string(gold_intent, pred_intent)
            self.intents_correct = (self.intents_correct or 0) + as_set
            self.overall_correct = (self.overall_correct or 0) + (as_set and all_tags_right)
            self.intent_strings_correct = (self.intent_strings_correct or 0) + as_string
            self.overall_strings_correct = (self.overall_strings_correct or 0) + (
                as_string and all_tags_right)

    def merge(self, other: Counts) -> Counts:
        def plus(a: int | None, b: int | None) -> int | None:
            return None if a is None and b is None else (a or 0) + (b or 0)
        return Counts(self.correct + other.correct, self.gold + other.gold,
                      self.predicted + other.predicted, self.tokens + other.tokens,
                      self.tokens_correct + other.tokens_correct,
                      self.sentences + other.sentences,
                      self.sentences_correct + other.sentences_correct,
                      plus(self.intents_correct, other.intents_correct),
                      plus(self.overall_correct, other.overall_correct),
                      plus(self.intent_strings_correct, other.intent_strings_correct),
                      plus(self.overall_strings_correct, other.overall_strings_correct),
                      self.semeval.merge(other.semeval))

    def scores(self, semeval: bool = True) -> dict:
        """Fractions in [0, 1]: precision, recall, f1, token/sentence accuracy, per_slot,
        and when intents were predicted intent/overall accuracy, with the intent right as
        a set and (`*_string_accuracy`) as the exact string (analysis/intents.py);
        `semeval` (unless not wanted): the partial-match scores
        (semeval.SemEvalCounts.scores)."""
        result = {**_prf(sum(self.correct.values()), sum(self.gold.values()),
                         sum(self.predicted.values())),
                  "token_accuracy": _ratio(self.tokens_correct, self.tokens),
                  "sentence_accuracy": _ratio(self.sentences_correct, self.sentences),
                  "sentences": self.sentences, "tokens": self.tokens}
        if self.intents_correct is not None:
            result["intent_accuracy"] = _ratio(self.intents_correct, self.sentences)
            result["overall_accuracy"] = _ratio(self.overall_correct or 0, self.sentences)
            result["intent_string_accuracy"] = _ratio(self.intent_strings_correct or 0,
                                                      self.sentences)
            result["overall_string_accuracy"] = _ratio(self.overall_strings_correct or 0,
                                                       self.sentences)
        kinds = sorted(set(self.gold) | set(self.predicted))
        result["per_slot"] = {
            kind: {**_prf(self.correct[kind], self.gold[kind], self.predicted[kind]),
                   "support": self.gold[kind]}
            for kind in kinds}
        if semeval:
            result["semeval"] = self.semeval.scores()
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
