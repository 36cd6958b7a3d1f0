"""`slotfill tune`: search spaces checked before any work, trials as run directories, the
best config through `slotfill train`, pruning, a study resumed after a signal and after
kill -9, and two processes sharing one SQLite study."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import TINY, longer_tiny_corpus, tiny_overrides
from typer.testing import CliRunner

from slotfill.cli import app
from slotfill.cli.tune import DEFAULT_SPACE
from slotfill.config import load_config
from slotfill.errors import ConfigError
from slotfill.training.events import TrainingLogger
from slotfill.training.rundir import RunDir
from slotfill.tuning.space import default_space, parse_space

optuna = pytest.importorskip("optuna")

runner = CliRunner()
# small trials: every tagger trains in a second on the tiny corpus
TINY_ARGS = ["bilstm", *tiny_overrides(epochs=2)]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def study_of(directory: Path):
    return optuna.load_study(study_name=directory.name.removeprefix("tune-"),
                             storage=f"sqlite:///{directory / 'study.db'}")


# ---------------------------------------------------------------- search spaces

def test_a_bad_space_file_is_reported_at_once_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "space.yaml").write_text(
        "model.hiden_size: {low: 16, high: 64}\n"
        "train.lr: {low: 0.01, high: 0.001}\n"
        "model.head: {low: 1, high: 2}\n"
        "model.embedding_dim: {low: 0, high: 64}\n"
        "model.num_layers: {low: 1.5, high: 3}\n"
        "train.weight_decay: {low: 0.0, high: 0.1, log: true}\n"
        "model.type: [lstm, gruu]\n"
        "train.batch_size: 32\n"
        "model:\n  output_dropout: {low: 0.0, high: 0.5, stp: 0.1}\n")
    result = invoke("tune", *TINY_ARGS, "--trials", 2, "--space", "space.yaml")
    assert result.exit_code == 2, result.output
    assert "Invalid search space space.yaml" in result.stderr
    for problem in ("model.hiden_size: unknown key; did you mean model.hidden_size?",
                    "train.lr: low (0.01) must be below high (0.001)",
                    "model.head: a range needs a number-valued key; give a list of choices",
                    "model.embedding_dim: must be >= 1, got 0 (the range's low)",
                    "model.num_layers: low must be an integer, got 1.5",
                    "train.weight_decay: a log range needs low > 0",
                    "model.type: invalid choice 'gruu'",
                    "train.batch_size: expected a range",
                    "model.output_dropout: unknown field 'stp'"):
        assert problem in result.stderr, problem
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_a_space_that_does_not_fit_the_config_is_refused(tmp_path):
    from slotfill.tuning.tuner import Tuner

    space = tmp_path / "space.yaml"
    space.write_text("train.lr: {low: 1.0e-4, high: 1.0e-2, log: true}\n"
                     "model.dropout: {low: 0.0, high: 0.5}\n")  # bilstm has one layer
    with pytest.raises(ConfigError) as caught:
        Tuner("bilstm", [*tiny_overrides(), "train.lr=0.01"], 1, space=space)
    detail = caught.value.detail
    assert "train.lr: set by an override and searched by the space" in detail
    assert "with the space's high ends and last choices the config is invalid" in detail
    assert "model.dropout: acts between stacked layers" in detail
    assert "low ends" not in detail  # no dropout with one layer is a valid config


def test_default_spaces_per_tagger_leave_out_what_is_fixed():
    space = default_space(load_config("bilstm", ["train.lr=0.01"]), fixed={"train.lr"})
    keys = [p.key for p in space.params]
    assert "train.lr" not in keys and "model.hidden_size" in keys
    assert "model.nonlinearity" not in keys
    rnn = default_space(load_config("rnn"))
    assert {"model.nonlinearity", "model.context_window"} <= {p.key for p in rnn.params}
    for param in rnn.params:  # what --help promises
        assert param.key.partition(".")[2] in DEFAULT_SPACE, param.key
    nested = parse_space({"model": {"hidden_size": {"low": 64, "high": 256, "step": 64}},
                          "model.head": ["softmax", "crf"]}, "space.yaml")
    assert nested.to_dict() == {"model.hidden_size": {"low": 64, "high": 256, "step": 64},
                                "model.head": ["softmax", "crf"]}
    assert parse_space(nested.to_dict(), "again").params == nested.params


def test_processes_of_a_study_on_one_machine_share_its_cores():
    from slotfill.threads import usable_cores
    from slotfill.tuning.study import thread_share

    assert thread_share(0, 1) == 0  # alone: follow the free cores
    assert thread_share(0, 2) == max(1, usable_cores() // 2)
    assert thread_share(3, 2) == 3  # the config's own count wins


def test_a_storage_url_that_does_not_open_is_an_error_and_leaves_nothing(tmp_path,
                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("tune", *TINY_ARGS, "--trials", 1, "--storage", "nosuchdb://host/db")
    assert result.exit_code == 2
    assert "Cannot open the study storage nosuchdb://host/db" in result.stderr
    assert not (tmp_path / "runs" / "tune-bilstm").exists()


def test_without_optuna_the_error_names_the_extra(monkeypatch):
    import importlib.util
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "optuna" else find_spec(name, *a))
    result = invoke("tune", *TINY_ARGS, "--trials", 1)
    assert result.exit_code == 2
    assert 'pip install "slotfill[tune]"' in result.stderr


# ---------------------------------------------------------------- a study end to end

def test_a_study_writes_run_directories_and_a_best_config_that_trains(tmp_path,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    space = tmp_path / "space.yaml"
    space.write_text("train.lr: {low: 1.0e-3, high: 3.0e-2, log: true}\n"
                     "model.head: [softmax, crf]\n")
    args = [*TINY_ARGS, "--space", space, "--study", "tiny"]
    result = invoke("tune", *args, "--trials", 3)
    assert result.exit_code == 0, result.output
    directory = tmp_path / "runs" / "tune-tiny"
    study = study_of(directory)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 3
    listed = json.loads(invoke("runs", directory, "--json").stdout)
    assert sorted(Path(r["run"]).name for r in listed) == ["trial-000", "trial-001",
                                                           "trial-002"]
    assert {r["state"] for r in listed} == {"finished"}
    assert "best: trial" in result.stdout and "slotfill runs runs/tune-tiny" in result.stdout

    best = max(complete, key=lambda t: t.value)
    best_file = directory / "best.yaml"
    written = yaml.safe_load(best_file.read_text())
    assert written["model"]["head"] == best.params["model.head"]
    assert written["train"]["lr"] == pytest.approx(best.params["train.lr"])
    assert best_file.read_text().startswith(f"# The best config of study tiny: trial "
                                            f"{best.number}")
    result = invoke("train", best_file, "--output", tmp_path / "again")
    assert result.exit_code == 0, result.output
    again = RunDir(tmp_path / "again").read_metrics()["dev"]["f1"]
    assert again == pytest.approx(best.value)  # the same config, seed and thread: same run

    result = invoke("tune", *args, "--trials", 3)  # the same command: nothing left to run
    assert result.exit_code == 0 and "continuing the study: 3 of 3" in result.stdout
    assert len(study_of(directory).trials) == 3
    result = invoke("tune", *args, "--trials", 3, "model.hidden_size=24")
    assert result.exit_code == 2
    assert "model.hidden_size: 16 in the study, 24 here" in result.stderr


def test_pruned_trials_stop_early_and_their_run_directories_say_so(tmp_path, monkeypatch):
    from slotfill.tuning.tuner import Tuner

    monkeypatch.chdir(tmp_path)
    always = optuna.pruners.ThresholdPruner(lower=2.0)  # no F1 reaches 2: every trial stops
    tuner = Tuner("bilstm", tiny_overrides(epochs=4), 2, study="pruned", pruner=always)
    tuner.open()
    rows = list(tuner.run())
    assert [(r.state, r.epochs) for r in rows] == [("pruned", 1), ("pruned", 1)]
    for row in rows:
        run = RunDir(row.run_dir)
        assert run.state() == "pruned"
        assert "pruned by slotfill tune after epoch 1" in run.read_status()["reason"]
        assert len(run.read_history()) == 1 and run.read_metrics()["epochs"] == 1
    assert tuner.remaining() == 0 and tuner.write_best() is None


def test_a_trial_stopped_by_a_signal_runs_again_when_the_study_continues(tmp_path,
                                                                        monkeypatch):
    from slotfill.tuning.tuner import Tuner, TuneInterrupted

    monkeypatch.chdir(tmp_path)

    class CtrlC(TrainingLogger):
        def step(self, step):
            os.kill(os.getpid(), signal.SIGINT)

    tuner = Tuner("bilstm", tiny_overrides(epochs=1), 2, study="stopped")
    tuner.open()
    with pytest.raises(TuneInterrupted) as caught:
        list(tuner.run(lambda start: [CtrlC()]))
    assert caught.value.trial == 0 and caught.value.signum == signal.SIGINT
    assert RunDir(tmp_path / "runs" / "tune-stopped" / "trial-000").state() == "interrupted"

    tuner = Tuner("bilstm", tiny_overrides(epochs=1), 2, study="stopped")
    tuner.open()
    rows = list(tuner.run())
    assert [r.state for r in rows] == ["complete", "complete"]
    first = tuner.study.trials[0]
    assert first.state.name == "FAIL" and rows[0].note == "repeats trial 0"
    assert tuner.study.trials[1].params == first.params


def test_a_study_killed_mid_trial_continues_with_that_trial_again(tmp_path, monkeypatch):
    (tmp_path / "corpus").mkdir()
    corpus = longer_tiny_corpus(tmp_path / "corpus", times=5)
    args = ["tune", "bilstm", *tiny_overrides(), f"data.path={corpus}", "--trials", "2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "slotfill", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    trial = tmp_path / "runs" / "tune-bilstm" / "trial-000"
    deadline = time.time() + 120
    while not (trial / "status.json").exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    monkeypatch.chdir(tmp_path)
    result = invoke(*args)  # the same command again
    assert result.exit_code == 0, result.output
    study = study_of(tmp_path / "runs" / "tune-bilstm")
    states = [t.state.name for t in study.trials]
    assert states == ["FAIL", "COMPLETE", "COMPLETE"]
    assert study.trials[1].params == study.trials[0].params  # the killed trial, again
    assert study.trials[1].user_attrs["retry_of"] == 0
    killed = RunDir(trial).read_status()
    assert killed["state"] == "failed" and "queued to run again" in killed["reason"]
    assert "repeats trial 0" in result.stdout


def test_two_processes_on_one_study_never_run_a_trial_twice(tmp_path):
    from slotfill.threads import usable_cores

    overrides = [o for o in tiny_overrides() if not o.startswith("train.threads")]
    args = [sys.executable, "-m", "slotfill", "tune", "bilstm", *overrides, "--trials", "6"]
    procs = [subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    ran = [{int(line.split()[1]) for line in out.splitlines()
            if line.startswith("trial ") and " complete" in line} for out, _ in outputs]
    assert ran[0] and ran[1], "both processes should have trained trials"
    assert not ran[0] & ran[1]
    study = study_of(tmp_path / "runs" / "tune-bilstm")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert {t.number for t in complete} == ran[0] | ran[1]
    assert 6 <= len(complete) <= 7  # two last trials may start at the same moment
    pids = {proc.pid for proc in procs}
    for trial in complete:  # each trial's run directory is its own, written by its process
        status = RunDir(trial.user_attrs["run_dir"]).read_status()
        assert status["state"] == "finished" and status["pid"] == trial.user_attrs["pid"]
        assert trial.user_attrs["pid"] in pids
    # a trial started while the other process trained took half the cores, else all free
    shared = {int(line.split()[1].rstrip(":")) for out, _ in outputs
              for line in out.splitlines() if "2 processes of the study share" in line}
    assert shared
    for trial in complete:
        threads = RunDir(trial.user_attrs["run_dir"]).read_config()["train"]["threads"]
        assert threads == (max(1, usable_cores() // 2) if trial.number in shared else 0)
