"""The paired bootstrap of `slotfill compare`: no difference is never significant, a clear
one is, and its scores are the metrics' own."""

from __future__ import annotations

import json
import random

from conftest import TINY
from typer.testing import CliRunner

from slotfill.analysis.evaluate import Predictions
from slotfill.analysis.metrics import score
from slotfill.analysis.significance import paired_bootstrap
from slotfill.cli import app
from slotfill.data.corpus import read_corpus

TEST = read_corpus(TINY)["test"]


def damaged(fraction: float, seed: int) -> Predictions:
    """Gold tags and intents with a share of utterances made all-O and misclassified."""
    rng = random.Random(seed)
    tags, intents = [], []
    for example in TEST:
        broken = rng.random() < fraction
        tags.append(["O"] * len(example.tags) if broken else list(example.tags))
        intents.append("nonsense" if broken else example.intent)
    return Predictions(tags, intents)


def test_identical_predictions_differ_by_nothing():
    same = damaged(0.3, 1)
    for d in paired_bootstrap(TEST, same, same, samples=200):
        assert d.delta == 0 and d.low == d.high == 0 and not d.significant


def test_full_sample_scores_are_the_metrics_own():
    a, b = damaged(0.5, 1), damaged(0.1, 2)
    found = {d.metric: d for d in paired_bootstrap(TEST, a, b, samples=200)}
    for name, predicted in (("a", a), ("b", b)):
        expected = score([e.tags for e in TEST], predicted.tags, [e.intent for e in TEST],
                         predicted.intents)
        for metric in ("f1", "intent_accuracy", "overall_accuracy", "sentence_accuracy"):
            assert abs(getattr(found[metric], name) - expected[metric]) < 1e-12


def test_a_large_gap_is_significant_and_a_small_one_is_not():
    perfect = damaged(0.0, 0)
    worse = {d.metric: d for d in paired_bootstrap(TEST, perfect, damaged(0.6, 3))}
    assert worse["f1"].delta < 0 and worse["f1"].significant
    assert worse["f1"].low <= worse["f1"].delta <= worse["f1"].high < 0
    one_off = Predictions([list(e.tags) for e in TEST], [e.intent for e in TEST])
    one_off.intents[0] = "nonsense"  # one intent error in 20 utterances
    slight = {d.metric: d for d in paired_bootstrap(TEST, perfect, one_off)}
    intent = slight["intent_accuracy"]
    assert abs(intent.delta + 0.05) < 1e-12 and not intent.significant


def test_compare_tests_each_run_against_the_first(trained_run, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["compare", str(trained_run), str(trained_run), str(tmp_path)])
    assert result.exit_code == 2 or result.exit_code == 1  # tmp_path is no run directory
    result = runner.invoke(app, ["compare", str(trained_run), str(trained_run)])
    assert result.exit_code == 0, result.output
    assert "+0.00" in result.stdout and "paired bootstrap" in result.stdout
    parsed = json.loads(runner.invoke(app, ["compare", "--json", str(trained_run),
                                            str(trained_run)]).stdout)
    test = parsed[1]["significance"]
    assert test["reference"] == str(trained_run) and test["split"] == "test"
    assert {d["metric"] for d in test["differences"]} == {"f1", "sentence_accuracy"}
    assert all(not d["significant"] for d in test["differences"])
    quiet = runner.invoke(app, ["compare", "--no-significance", str(trained_run),
                                str(trained_run)])
    assert "bootstrap" not in quiet.stdout
