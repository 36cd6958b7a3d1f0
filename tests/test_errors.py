"""Error analysis: how spans are judged, counts that agree with `slotfill eval`,
calibration, and `eval --errors` / `--errors-file`."""

from __future__ import annotations

import functools
import json

import pytest
from typer.testing import CliRunner

from slotfill.analysis.calibration import reliability
from slotfill.analysis.errors import (
    EXACT,
    MISSED,
    NONE,
    SPURIOUS,
    WRONG_BOTH,
    WRONG_BOUNDARY,
    WRONG_TYPE,
    analyse,
    judge,
)
from slotfill.analysis.evaluate import Predictions
from slotfill.analysis.metrics import Counts, score
from slotfill.cli import app
from slotfill.data.corpus import Example

runner = CliRunner()


def test_each_gold_span_is_judged_by_the_predicted_span_closest_to_it():
    gold = [("a", 0, 2), ("b", 3, 4), ("c", 5, 7), ("d", 7, 9), ("e", 10, 11)]
    predicted = [("x", 0, 2),  # same boundaries as a: wrong type
                 ("b", 3, 5),  # b, longer: wrong boundary
                 ("x", 6, 8),  # overlaps c and d: wrong type and boundary for both
                 ("e", 10, 11),  # exact
                 ("f", 12, 13)]  # overlaps nothing: spurious
    judged, spurious = judge(gold, predicted)
    assert judged == [(WRONG_TYPE, 0), (WRONG_BOUNDARY, 1), (WRONG_BOTH, 2), (WRONG_BOTH, 2),
                      (EXACT, 3)]
    assert spurious == [4]
    assert judge([("a", 0, 1)], []) == ([(MISSED, None)], [])
    # with several overlapping predictions, the best verdict wins, then the largest overlap
    assert judge([("a", 0, 3)], [("b", 0, 1), ("a", 1, 2), ("b", 0, 3)])[0] == [
        (WRONG_TYPE, 2)]


def example(words: str, tags: str, intent: str | None = None) -> Example:
    return Example(tuple(words.split()), tuple(tags.split()), intent)


EXAMPLES = [
    example("fly to boston", "O O B-to", "flight"),
    example("fly from new york", "O O B-from I-from", "flight"),
    example("cheap fares to denver tomorrow please now", "B-cost O O B-to B-date O O",
            "fare"),
    example("hello", "O", "greet"),
]
PREDICTED = Predictions(
    tags=[["O", "O", "B-to"], ["O", "O", "B-to", "O"], ["O", "B-cost", "O", "B-to", "O",
                                                          "B-date", "O"], ["O"]],
    intents=["flight", "fare", "fare", "greet"],
    confidence=[{(2, 3): 0.9}, {(2, 3): 0.8}, {(1, 2): 0.3, (3, 4): 0.95, (5, 6): 0.6}, {}],
    intent_confidence=[0.9, 0.55, 0.7, 0.99])


def test_analysis_counts_agree_with_the_scores():
    analysis = analyse(EXAMPLES, PREDICTED, {"fly", "to", "boston", "from", "hello"})
    expected = score([e.tags for e in EXAMPLES], PREDICTED.tags, [e.intent for e in EXAMPLES],
                     PREDICTED.intents)
    assert analysis.counts.scores() == expected
    every = analysis.breakdown["all"]
    assert every == {EXACT: 2, WRONG_BOTH: 1, MISSED: 2, SPURIOUS: 2}
    assert every[EXACT] == sum(analysis.counts.correct.values())
    assert sum(every[k] for k in (EXACT, WRONG_BOTH, MISSED)) == sum(
        analysis.counts.gold.values())
    assert analysis.breakdown["from"] == {WRONG_BOTH: 1}
    assert analysis.breakdown["cost"] == {MISSED: 1, SPURIOUS: 1}
    assert analysis.slot_confusion == {("to", "to"): 2, ("from", "to"): 1,
                                       ("cost", NONE): 1, ("date", NONE): 1,
                                       (NONE, "cost"): 1, (NONE, "date"): 1}
    assert analysis.intent_confusion == {("flight", "flight"): 1, ("flight", "fare"): 1,
                                         ("fare", "fare"): 1, ("greet", "greet"): 1}
    # the buckets partition the utterances: their counts add up to the whole
    for buckets in (analysis.by_length, analysis.by_unseen):
        total = functools.reduce(Counts.merge, buckets.values())
        assert total.scores() == expected
    assert analysis.by_length["1-5 words"].sentences == 3
    assert analysis.by_unseen["some word unseen"].sentences == 2
    wrong = analysis.wrong
    assert [u.index for u in wrong] == [2, 1]  # most errors first
    assert wrong[1].kinds == [WRONG_BOTH, "wrong intent"]
    assert wrong[0].unseen == ["cheap", "denver", "fares", "now", "please", "tomorrow"]
    record = wrong[1].to_dict()
    assert record["gold"] == [{"slot": "from", "start": 2, "end": 4, "value": "new york",
                               "judged": WRONG_BOTH}]
    assert record["predicted"] == [{"slot": "to", "start": 2, "end": 3, "value": "new",
                                    "confidence": 0.8}]
    assert (record["gold_intent"], record["predicted_intent"]) == ("flight", "fare")
    spans = analysis.calibration
    assert spans.count == 5 and spans.accuracy == pytest.approx(2 / 5)


def test_reliability_bins_and_expected_calibration_error():
    result = reliability([0.05, 0.15, 0.95, 0.95, 1.0], [False, True, True, False, True])
    assert [b.count for b in result.bins] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 3]
    last = result.bins[-1]
    assert last.confidence == pytest.approx(2.9 / 3) and last.accuracy == pytest.approx(2 / 3)
    expected = (0.05 + 0.85 + 3 * abs(2 / 3 - 2.9 / 3)) / 5
    assert result.ece == pytest.approx(expected)
    assert reliability([], []).ece == 0.0


def test_eval_errors_lists_the_worst_and_writes_every_wrong_utterance(trained_run, tmp_path):
    scores = json.loads(runner.invoke(app, ["eval", "--model", str(trained_run),
                                            "--json"]).stdout)
    wrong_expected = scores["sentences"] - round(scores["sentence_accuracy"]
                                                 * scores["sentences"])
    assert wrong_expected >= 2
    result = runner.invoke(app, ["eval", "--model", str(trained_run), "--errors", "2",
                                 "--errors-file", str(tmp_path / "wrong.jsonl")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"{wrong_expected} of {scores['sentences']} utterances wrong; the 2 worst" in out
    assert out.count("  gold       ") == 2 and out.count("  predicted  ") == 2
    assert "\x1b[" not in out  # plain text when not a terminal
    lines = [json.loads(line) for line in (tmp_path / "wrong.jsonl").read_text().splitlines()]
    assert len(lines) == wrong_expected
    for line in lines:
        assert {"text", "gold", "predicted", "errors"} <= set(line) and line["errors"]
        assert all(0.0 <= p["confidence"] <= 1.0 for p in line["predicted"])
    result = runner.invoke(app, ["eval", "--model", str(trained_run), "--errors", "2",
                                 "--json"])
    assert result.exit_code == 2 and "--errors-file" in result.stderr
