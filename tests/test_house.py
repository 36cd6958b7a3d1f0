"""The CLI as a new user meets it: bundled configs by name, the runs list, starting from
another run's weights, and commands that say which run they picked."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import TINY, tiny_overrides
from typer.testing import CliRunner

from slotfill.cli import app

runner = CliRunner()


def invoke(*args, input: str | None = None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def test_configs_lists_every_bundled_config_with_a_description():
    result = invoke("configs")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith("bilstm-crf ") and "CRF" in line for line in lines)
    listed = json.loads(invoke("configs", "--json").stdout)
    assert {row["name"] for row in listed} >= {"bilstm", "rnn", "jordan", "joint", "seq2seq"}
    assert all(row["description"] for row in listed)


def test_init_config_writes_an_editable_copy_that_trains(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("init", "config", "lstm-crf", "mine.yaml")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "mine.yaml").read_text()
    assert "# Run: slotfill train mine.yaml" in text
    assert yaml.safe_load(text)["model"]["head"] == "crf"
    result = invoke("init", "config", "lstm-crf", "mine.yaml")
    assert result.exit_code == 2 and "exists already" in result.stderr
    result = invoke("init", "config", "bilstm-cfr")
    assert result.exit_code == 2 and "did you mean 'bilstm-crf'" in result.stderr
    result = invoke("train", "mine.yaml", *tiny_overrides(), "--output", "run")
    assert result.exit_code == 0, result.output


def test_train_resolves_a_bundled_config_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here: the name must come from the package
    result = invoke("train", "gru", *tiny_overrides(), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "type: gru" in result.stdout
    assert "parameters on cpu" in result.stdout  # the resolved device, never `auto`
    result = invoke("train", "gruu", *tiny_overrides())
    assert result.exit_code == 2 and "Config file not found: gruu" in result.stderr
    assert "bilstm-crf" in result.stderr  # the names to choose from


def test_an_existing_output_is_refused_before_any_work(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    result = invoke("train", "lstm", *tiny_overrides(), "--output", tmp_path / "taken")
    assert result.exit_code == 1 and "exists and is not empty" in result.stderr
    assert "Resolved config" not in result.stdout  # refused before the config dump


def test_runs_lists_newest_first_with_state(trained_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("runs")
    assert result.exit_code == 2 and "No such directory: runs" in result.stderr
    assert invoke("train", "lstm", *tiny_overrides(), "--output", "runs/first").exit_code == 0
    assert invoke("train", "gru", *tiny_overrides(), "--output", "runs/second").exit_code == 0
    (tmp_path / "runs" / "broken").mkdir()
    (tmp_path / "runs" / "broken" / "config.yaml").write_text(
        (trained_run / "config.yaml").read_text())
    result = invoke("runs")
    assert result.exit_code == 0, result.output
    names = [line.split()[0] for line in result.stdout.splitlines()
             if line.strip().split(" ")[0] in ("first", "second", "broken")]
    assert names == ["broken", "second", "first"]
    assert "unknown" in result.stdout  # a run with no status says so
    rows = json.loads(invoke("runs", "--json").stdout)
    assert [r["state"] for r in rows] == ["unknown", "finished", "finished"]
    assert rows[1]["test"]["f1"] >= 0 and rows[1]["seconds"] > 0


def test_commands_say_which_run_they_picked(trained_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "only").symlink_to(trained_run)
    result = invoke("eval", "--json")
    assert result.exit_code == 0, result.output
    assert "using the newest run: runs/only (best.pt)" in result.stderr
    assert json.loads(result.stdout)["model"] == "runs/only/best.pt"
    result = invoke("eval", "--json", "--model", trained_run)
    assert "using the newest run" not in result.stderr


def test_init_starts_from_another_runs_weights_and_extends_the_vocabulary(trained_run,
                                                                         tmp_path):
    """Fine-tuning on a corpus with new words and a new tag: the old run stays untouched,
    the new one reports what was added and starts from the old weights."""
    import torch

    from slotfill.models.checkpoint import load_checkpoint

    corpus = tmp_path / "more"
    for split in ("train", "valid", "test"):
        (corpus / split).mkdir(parents=True)
        for name in ("seq.in", "seq.out", "label"):
            (corpus / split / name).write_text((TINY / split / name).read_text())
    with open(corpus / "train" / "seq.in", "a") as f:
        f.write("fly to zanzibar\n")
    with open(corpus / "train" / "seq.out", "a") as f:
        f.write("O O B-toloc.island_name\n")
    with open(corpus / "train" / "label", "a") as f:
        f.write("atis_flight\n")
    before = (trained_run / "best.pt").read_bytes()
    old = load_checkpoint(trained_run / "best.pt")
    overrides = [o for o in tiny_overrides(epochs=1) if not o.startswith("data.path")]
    result = invoke("train", "bilstm", *overrides, f"data.path={corpus}",
                    "train.lr=0", "--init", trained_run, "--output", tmp_path / "tuned")
    assert result.exit_code == 0, result.output
    assert "starting from the weights of" in result.stdout
    assert "words" in result.stdout and "tags" in result.stdout
    assert (trained_run / "best.pt").read_bytes() == before
    new = load_checkpoint(tmp_path / "tuned" / "best.pt")
    assert new.vocabs.words.itos[:len(old.vocabs.words)] == old.vocabs.words.itos
    assert new.vocabs.words.itos[-1] == "zanzibar"
    assert new.vocabs.tags.itos[-1] == "B-toloc.island_name"
    old_emb = old.model_state["embedder.words.weight"]
    new_emb = new.model_state["embedder.words.weight"]
    torch.testing.assert_close(new_emb[:len(old_emb)], old_emb)  # lr=0: unchanged
    assert yaml.safe_load((tmp_path / "tuned" / "config.yaml").read_text())["train"]["init"]


def test_init_needs_the_same_architecture(trained_run, tmp_path):
    result = invoke("train", "bilstm", *tiny_overrides(), "model.hidden_size=32",
                    "--init", trained_run, "--output", tmp_path / "x")
    assert result.exit_code == 2
    assert "model.hidden_size: 16 in the init run, 32 here" in result.stderr


@pytest.mark.parametrize("where", ["epoch 2, after batch 1", "epoch 2"])
def test_resume_says_where_it_continues(tmp_path, where):
    """A run stopped inside epoch 2 resumes there, not 'after epoch 0'."""
    from slotfill.config import load_config
    from slotfill.training.events import TrainingLogger
    from slotfill.training.run import resume, train
    from slotfill.training.trainer import StopRequested, Trainer

    cfg = load_config("lstm", tiny_overrides(epochs=3))
    original = Trainer.train_epoch
    calls = {"n": 0}

    def stop_in_second(self, on_batch=None):
        calls["n"] += 1
        if calls["n"] == 2:
            if "batch" in where:
                self.position = {"generator": self.generator.get_state(), "step": 1,
                                 "loss_sum": 0.0, "norm_sum": 0.0}
                raise StopRequested
            raise KeyboardInterrupt
        return original(self, on_batch)

    class Recorder(TrainingLogger):
        def start(self, run):
            self.resumed_from = run.resumed_from

    Trainer.train_epoch = stop_in_second
    try:
        with pytest.raises((KeyboardInterrupt, Exception)):
            train(cfg, tmp_path)
    finally:
        Trainer.train_epoch = original
    recorder = Recorder()
    resume(tmp_path, loggers=[recorder])
    assert recorder.resumed_from == where
