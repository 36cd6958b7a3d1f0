"""Metrics against hand counts and against seqeval's default (conlleval-compatible) mode."""

from __future__ import annotations

import random

import pytest
from seqeval.metrics import (
    classification_report,
    f1_score,
    precision_score,
    recall_score,
)

from slotfill.analysis.metrics import Counts, score
from slotfill.data.bio import extract_spans


def test_spans_follow_conlleval_rules():
    assert extract_spans(["B-a", "I-a", "O", "B-b"]) == [("a", 0, 2), ("b", 3, 4)]
    # ill-formed BIO: an I- without a B- starts a chunk; a type change ends one
    assert extract_spans(["I-a", "I-a", "O", "I-b"]) == [("a", 0, 2), ("b", 3, 4)]
    assert extract_spans(["B-a", "I-b", "I-b"]) == [("a", 0, 1), ("b", 1, 3)]
    assert extract_spans(["B-a", "B-a"]) == [("a", 0, 1), ("a", 1, 2)]
    assert extract_spans(["O", "O"]) == []
    assert extract_spans([]) == []


def test_hand_counted_example():
    gold = [["B-a", "I-a", "O", "B-b"], ["O", "B-a"]]
    pred = [["B-a", "I-a", "O", "B-c"], ["O", "I-a"]]
    s = score(gold, pred)
    # gold spans: a(0-2) b(3) | a(1); predicted: a(0-2) c(3) | a(1) -> 2 correct of 3 and 3
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 / 3)
    assert s["token_accuracy"] == pytest.approx(4 / 6)  # B-b vs B-c, B-a vs I-a
    assert s["sentence_accuracy"] == 0.0
    assert s["per_slot"]["a"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    # a slot never predicted has precision 0, as in conlleval
    assert s["per_slot"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert s["per_slot"]["c"]["support"] == 0 and s["per_slot"]["c"]["precision"] == 0.0
    assert "intent_accuracy" not in s


def test_partial_overlap_is_wrong_and_sentence_accuracy():
    gold = [["B-a", "I-a", "O"], ["O", "O", "B-b"]]
    pred = [["B-a", "O", "O"], ["O", "O", "B-b"]]
    s = score(gold, pred)
    assert (s["precision"], s["recall"]) == (0.5, 0.5)
    assert s["sentence_accuracy"] == 0.5


def test_intents_and_overall_accuracy():
    s = score([["B-a"], ["O"], ["O"]], [["B-a"], ["B-a"], ["O"]],
              ["x", "y", "x#y"], ["x", "y", "x"])
    assert s["intent_accuracy"] == pytest.approx(2 / 3)  # multi-labels count as one string
    assert s["overall_accuracy"] == pytest.approx(1 / 3)


def test_tags_never_predicted_count_as_missed_gold():
    s = score([["B-unseen", "I-unseen"]], [["O", "O"]])
    assert s["recall"] == 0.0 and s["per_slot"]["unseen"]["support"] == 1


def test_counts_merge_equals_joint_counts():
    gold = [["B-a", "O"], ["B-b", "I-b"], ["O", "I-a"]]
    pred = [["B-a", "O"], ["B-b", "O"], ["B-a", "I-a"]]
    left, right, joint = Counts(), Counts(), Counts()
    for i, (g, p) in enumerate(zip(gold, pred)):
        (left if i % 2 else right).add(g, p)
        joint.add(g, p)
    assert left.merge(right).scores() == joint.scores()


def seqeval_scores(gold, pred):
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    per_type = {k: v for k, v in report.items() if not k.endswith(" avg")}
    return (precision_score(gold, pred, zero_division=0),
            recall_score(gold, pred, zero_division=0),
            f1_score(gold, pred, zero_division=0), per_type)


def assert_matches_seqeval(gold, pred):
    ours = score(gold, pred)
    p, r, f, per_type = seqeval_scores(gold, pred)
    assert ours["precision"] == pytest.approx(p)
    assert ours["recall"] == pytest.approx(r)
    assert ours["f1"] == pytest.approx(f)
    for kind, row in per_type.items():
        assert ours["per_slot"][kind]["support"] == row["support"], kind
        if row["support"]:
            assert ours["per_slot"][kind]["recall"] == pytest.approx(row["recall"]), kind
        assert ours["per_slot"][kind]["precision"] == pytest.approx(row["precision"]), kind


def test_matches_seqeval_on_random_ill_formed_sequences():
    rng = random.Random(7)
    tags = ["O", "O", "O", "B-a", "I-a", "B-b", "I-b", "I-c", "B-c.d"]
    for _ in range(50):
        gold, pred = [], []
        for _ in range(rng.randint(1, 8)):
            n = rng.randint(1, 9)
            gold.append([rng.choice(tags) for _ in range(n)])
            pred.append([t if rng.random() < 0.6 else rng.choice(tags) for t in gold[-1]])
        assert_matches_seqeval(gold, pred)


def test_matches_seqeval_on_real_predictions(trained_run):
    """Predictions of a (deliberately undertrained) model on the tiny test split."""
    from slotfill.analysis.evaluate import SplitScorer
    from slotfill.data.corpus import read_corpus
    from slotfill.models.checkpoint import load_checkpoint

    ckpt = load_checkpoint(trained_run / "best.pt")
    examples = read_corpus(ckpt.config.data.path)["test"]
    pred = SplitScorer(examples, ckpt.vocabs).predict(ckpt.build_model()).tags
    gold = [list(e.tags) for e in examples]
    assert pred != gold  # an imperfect model makes the comparison meaningful
    assert_matches_seqeval(gold, pred)


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

TAG = st.sampled_from(["O", "B-a", "I-a", "B-b", "I-b", "B-c.d", "I-c.d"])
SEQUENCES = st.lists(st.lists(TAG, min_size=1, max_size=8), min_size=1, max_size=6)


@given(SEQUENCES)
def test_gold_against_itself_is_perfect(gold):
    s = score(gold, gold)
    has_spans = any(extract_spans(g) for g in gold)
    assert s["f1"] == (1.0 if has_spans else 0.0)
    assert s["token_accuracy"] == 1.0 and s["sentence_accuracy"] == 1.0


@given(SEQUENCES, st.randoms())
def test_span_counts_are_consistent(gold, rnd):
    pred = [[rnd.choice(["O", "B-a", "I-a", "B-b"]) if rnd.random() < 0.5 else t for t in g]
            for g in gold]
    counts = Counts()
    for g, p in zip(gold, pred):
        counts.add(g, p)
    assert sum(counts.gold.values()) == sum(len(extract_spans(g)) for g in gold)
    assert sum(counts.predicted.values()) == sum(len(extract_spans(p)) for p in pred)
    for kind in counts.correct:
        assert counts.correct[kind] <= min(counts.gold[kind], counts.predicted[kind])
    s = counts.scores()
    assert 0 <= s["precision"] <= 1 and 0 <= s["recall"] <= 1
    low, high = sorted((s["precision"], s["recall"]))
    assert low - 1e-12 <= s["f1"] <= high + 1e-12  # a harmonic mean lies between
