"""The public Python API: slotfill.load / train / evaluate / Config give what the command
line gives (predict --json, eval --json), and every docstring example runs as written."""

from __future__ import annotations

import doctest
import json

import pytest
from conftest import TINY, tiny_overrides
from typer.testing import CliRunner

import slotfill
from slotfill.analysis import tables
from slotfill.cli import app
from slotfill.errors import ConfigError, RunDirError

TEXTS = ["arrive Taipei on Nov 2nd", "leave boston", "???"]


def test_predict_results_are_what_predict_json_prints(trained_intent_run):
    model = slotfill.load(trained_intent_run)
    results = model.predict(TEXTS)
    printed = CliRunner().invoke(app, ["predict", "--json", "--model", str(trained_intent_run),
                                       *TEXTS])
    assert printed.exit_code == 0, printed.output
    assert [r.to_dict() for r in results] == [json.loads(line) for line in
                                             printed.stdout.splitlines()]
    first = results[0]
    assert first.tokens == ["arrive", "Taipei", "on", "Nov", "2nd"]
    assert first.intent in model.intents and 0 <= first.intent_confidence <= 1
    assert all(first.text[s.start:s.end] == s.value and 0 <= s.confidence <= 1
               for s in first.slots)
    assert results[2].tokens == [] and results[2].intent is None  # nothing to tag
    assert slotfill.Result.from_dict(first.to_dict()) == first


def test_min_confidence_drops_slots_and_their_tags(trained_intent_run):
    model = slotfill.load(trained_intent_run)
    everything = model.predict(TEXTS[0])[0]
    assert everything.slots, "the tiny joint model finds slots in this utterance"
    threshold = max(s.confidence for s in everything.slots)
    kept = model.predict(TEXTS[0], min_confidence=threshold)[0]
    assert kept.slots == [s for s in everything.slots if s.confidence >= threshold]
    assert sum(tag.startswith("B-") for tag in kept.tags) == len(kept.slots)
    assert model.predict(TEXTS[0], min_confidence=0.0)[0] == everything


def test_tag_takes_words_and_matches_predict(trained_run):
    model = slotfill.load(trained_run / "best.pt")
    assert not model.predicts_intents and model.intents == []
    words = ["Arrive", "TAIPEI", "on", "Nov", "2nd"]
    assert model.tag(words) == model.predict(" ".join(words))[0].tags
    assert set(model.tag(words)) <= set(model.tags)
    with pytest.raises(TypeError, match="list of words"):
        model.tag("arrive taipei")


def test_load_explains_a_wrong_path(tmp_path):
    with pytest.raises(RunDirError, match="Model not found"):
        slotfill.load(tmp_path / "nope")
    with pytest.raises(RunDirError, match="No best.pt"):
        slotfill.load(tmp_path)


def test_train_returns_the_run_and_its_scores(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    overrides = {"data.path": TINY, "train.epochs": 2, "model.hidden_size": 16,
                 "model.embedding_dim": 16, "train.threads": 1, "train.device": "cpu",
                 "train.report": False}
    result = slotfill.train("lstm", overrides=overrides, output="runs/mine")
    assert result.run_dir.resolve() == tmp_path / "runs" / "mine"
    assert len(result.history) == 2 and 1 <= result.best_epoch <= 2
    # what `slotfill train` prints: the model, a line per epoch, the final scores
    printed = capsys.readouterr().out
    assert "parameters on cpu" in printed and tables.epoch_header() in printed
    assert all(tables.epoch_row(record) in printed for record in result.history)
    assert f"best.pt: epoch {result.best_epoch} of 2" in printed
    assert result.stopped_early is None and "stopped" not in repr(result)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["test"]["f1"] == result.test["f1"]
    with pytest.raises(RunDirError, match="exists and is not empty"):
        slotfill.train("lstm", overrides=overrides, output="runs/mine")
    scores = slotfill.evaluate(result.run_dir)
    assert scores.f1 == result.test["f1"]
    printed = CliRunner().invoke(app, ["eval", "--json", "--model", str(result.run_dir)])
    assert json.loads(printed.stdout) == scores.to_dict()
    tagger = slotfill.load(result.run_dir)
    assert slotfill.evaluate(tagger, split="valid").f1 == result.dev["f1"]


def test_a_quiet_run_prints_nothing_and_says_why_it_stopped_early(tmp_path, capsys):
    overrides = [*tiny_overrides(epochs=6), "train.lr=0", "train.patience=2"]
    result = slotfill.train("lstm", overrides=overrides, output=tmp_path / "run", quiet=True)
    assert capsys.readouterr() == ("", "")
    # no step changes the weights: epoch 1 stays the best, and two epochs later it stops
    assert len(result.history) == 3 and result.best_epoch == 1
    assert result.stopped_early == ("stopped early after epoch 3 of 6: no better dev F1 "
                                    "in 2 epochs (train.patience=2)")
    status = json.loads((result.run_dir / "status.json").read_text())
    assert status == {**status, "state": "finished",
                      "reason": f"{result.stopped_early}; best epoch 1"}
    shown = repr(result)  # one line of headline scores, not the history's kilobytes
    assert "\n" not in shown and len(shown) < 400, shown
    assert shown.startswith(f"TrainResult(run_dir={str(result.run_dir)!r}, best_epoch=1 of 3 "
                            "trained (train.epochs 6), dev: f1 ")
    assert f"test: f1 {result.test['f1']:.4f}" in shown
    assert shown.endswith(f"stopped_early={result.stopped_early!r})")


def test_a_config_object_trains_and_bad_overrides_fail_before_any_work(tmp_path,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = slotfill.Config.load("gru", tiny_overrides())
    assert cfg.model.type == "gru" and cfg.train.epochs == 1
    assert cfg.override({"model.hidden_size": 8}).model.hidden_size == 8
    with pytest.raises(ConfigError, match="model.hiden_size: unknown key; did you mean"):
        slotfill.train(cfg, overrides={"model.hiden_size": 8}, output="runs/x")
    with pytest.raises(ConfigError, match=r"train.epochs: expected int, got string"):
        slotfill.Config.load(None, {"train.epochs": "three"})
    assert not (tmp_path / "runs").exists()  # nothing half-made
    result = slotfill.train(cfg, output=tmp_path / "runs" / "gru")
    assert (result.run_dir / "best.pt").is_file()


def test_every_docstring_example_runs(tmp_path, monkeypatch):
    """The API reference's examples, in a fresh directory, as a reader would run them:
    the `train` example first, since the others load the run it writes."""
    import slotfill.api
    import slotfill.config

    monkeypatch.chdir(tmp_path)
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = [t for module in (slotfill.api, slotfill.config, slotfill)
             for t in finder.find(module) if t.examples]
    tests.sort(key=lambda t: not t.name.endswith(".train"))
    names = {t.name for t in tests}
    assert {"slotfill.api.train", "slotfill.api.load", "slotfill.api.Tagger.predict",
            "slotfill.api.evaluate", "slotfill.config.Config.load"} <= names
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} of {runner.tries} examples failed"
    assert runner.tries > 2 * len(tests)
