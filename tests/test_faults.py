"""Faults a user meets: kill -9 and Ctrl-C during training, then --resume; failed runs.

Real subprocesses and real signals. A resumed run must end with exactly the metrics of
the same run left alone (same seed, one thread, CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CONFIGS, TINY, longer_tiny_corpus

from slotfill.errors import RunDirError
from slotfill.training.run import resume
from slotfill.training.rundir import RunDir

ARGS = [str(CONFIGS / "lstm.yaml"), "train.epochs=3", "train.patience=0",
        "model.hidden_size=16", "model.embedding_dim=16", "train.threads=1",
        "train.device=cpu", "train.seed=3", "train.lr_schedule=linear"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    # epochs of a few tenths of a second: a signal 0.1 s into the second epoch lands in it
    # (ten times the tiny corpus trains an epoch in 0.04 s on a fast core)
    return longer_tiny_corpus(tmp_path_factory.mktemp("corpus"), times=60)


def slotfill(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "slotfill", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


def run(*args: str) -> subprocess.CompletedProcess:
    proc = slotfill(*args)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    """The uninterrupted run."""
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    result = run("train", *ARGS, f"data.path={corpus}", "--output", str(run_dir))
    assert result.returncode == 0, result.stderr
    return run_dir


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def wait_for_epoch(run_dir: Path, proc: subprocess.Popen, epochs: int = 1) -> None:
    history = run_dir / "history.csv"
    deadline = time.time() + 120
    while time.time() < deadline:
        if history.exists() and len(history.read_text().splitlines()) > epochs:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("training made no progress")


def history_without_times(run_dir: Path) -> list[list[str]]:
    rows = [line.split(",") for line in (run_dir / "history.csv").read_text().splitlines()]
    return [row[:7] + row[8:] for row in rows]  # drop `seconds`


def test_sigkill_mid_training_then_resume_gives_identical_results(corpus, reference,
                                                                  tmp_path):
    run_dir = tmp_path / "run"
    proc = slotfill("train", *ARGS, f"data.path={corpus}", "--output", str(run_dir))
    wait_for_epoch(run_dir, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads((run_dir / "status.json").read_text())["state"] == "running"
    assert RunDir(run_dir).state() == "stopped"  # the writer is gone
    assert not (run_dir / "metrics.json").exists()
    result = run("train", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(run_dir)
    assert metrics(run_dir) == metrics(reference)
    assert history_without_times(run_dir) == history_without_times(reference)
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
    assert not list(run_dir.glob(".*.tmp"))


def test_ctrl_c_saves_last_and_resumes_exactly(corpus, reference, tmp_path):
    run_dir = tmp_path / "run"
    proc = slotfill("train", *ARGS, f"data.path={corpus}", "--output", str(run_dir))
    wait_for_epoch(run_dir, proc)
    time.sleep(0.1)  # into the next epoch
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"Resume with: slotfill train --resume {run_dir}" in err
    assert "Traceback" not in err
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "interrupted" and "signal 2" in status["reason"]
    result = run("train", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert metrics(run_dir) == metrics(reference)
    with pytest.raises(RunDirError, match="has finished"):
        resume(run_dir)


def test_a_failed_run_is_marked_failed(tmp_path, monkeypatch):
    from slotfill.config import load_config
    from slotfill.training.run import train
    from slotfill.training.trainer import Trainer

    def broken(self, on_batch=None):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(Trainer, "train_epoch", broken)
    cfg = load_config(CONFIGS / "lstm.yaml", [f"data.path={TINY}", "train.device=cpu"])
    with pytest.raises(RuntimeError):
        train(cfg, tmp_path)
    status = RunDir(tmp_path).read_status()
    assert status["state"] == "failed" and "disk on fire" in status["reason"]


def test_resume_needs_a_run_with_a_checkpoint(tmp_path):
    from typer.testing import CliRunner

    from slotfill.cli import app
    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "Run directory not found" in result.stderr
    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path)])
    assert result.exit_code == 1 and "is not a run directory" in result.stderr
    (tmp_path / "config.yaml").write_text("{}\n")
    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path)])
    assert result.exit_code == 1 and "No last.pt" in result.stderr
    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path), "x.yaml"])
    assert result.exit_code == 2 and "--resume takes no config" in result.stderr
