"""Two worker processes over loopback (torch.distributed, gloo): a valid run directory,
and an interrupted distributed run resumes to exactly the uninterrupted result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, longer_tiny_corpus

from slotfill.analysis.metrics import Counts
from slotfill.training.distributed import Dist

ARGS = [str(CONFIGS / "lstm.yaml"), "train.epochs=3", "train.patience=0",
        "model.hidden_size=16", "model.embedding_dim=16", "train.device=cpu",
        "train.seed=5", "--nproc", "2"]


def test_shares_are_equal_and_cover_every_batch():
    batches = [torch.tensor([i]) for i in range(7)]
    shares = [Dist(rank, 3).share(batches) for rank in range(3)]
    assert [len(s) for s in shares] == [3, 3, 3]
    assert {int(b) for s in shares for b in s} == set(range(7))
    assert Dist().share(batches) == batches
    assert [Dist(r, 2).shard(list(range(5))) for r in range(2)] == [[0, 2, 4], [1, 3]]


def test_counts_of_shards_add_up_to_the_whole():
    gold = [["B-a", "O"], ["B-b", "I-b"], ["O", "B-a"]]
    pred = [["B-a", "O"], ["B-b", "O"], ["O", "B-a"]]
    parts = [Counts(), Counts()]
    whole = Counts()
    for i, (g, p) in enumerate(zip(gold, pred)):
        parts[i % 2].add(g, p)
        whole.add(g, p)
    assert parts[0].merge(parts[1]).scores() == whole.scores()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return longer_tiny_corpus(tmp_path_factory.mktemp("corpus"))


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "slotfill", "train", *args],
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # a process group, like a terminal's


@pytest.fixture(scope="module")
def two_process_run(corpus, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("ddp") / "run"
    proc = start(*ARGS, f"data.path={corpus}", "--output", str(run_dir))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[-1] == str(run_dir)
    assert "2 processes" in out
    return run_dir


def test_two_processes_write_a_valid_run(two_process_run):
    from slotfill.serving.predict import Predictor

    for name in ("config.yaml", "best.pt", "last.pt", "history.csv", "metrics.json",
                 "metrics.md", "status.json"):
        assert (two_process_run / name).is_file(), name
    assert len((two_process_run / "history.csv").read_text().splitlines()) == 4
    assert json.loads((two_process_run / "status.json").read_text())["state"] == "finished"
    result = Predictor(two_process_run / "best.pt").predict(["leave Boston on Nov 2nd"])[0]
    assert result["tokens"] == ["leave", "Boston", "on", "Nov", "2nd"]


def start_and_wait_for_an_epoch(corpus: Path, run_dir: Path) -> subprocess.Popen:
    """A two-process run, once its first epoch is in history.csv."""
    proc = start(*ARGS, f"data.path={corpus}", "--output", str(run_dir))
    history = run_dir / "history.csv"
    deadline = time.time() + 120
    while not (history.exists() and len(history.read_text().splitlines()) > 1):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.02)
    return proc


def test_ctrl_c_then_resume_with_two_processes(corpus, two_process_run, tmp_path):
    run_dir = tmp_path / "run"
    proc = start_and_wait_for_an_epoch(corpus, run_dir)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"slotfill train --resume {run_dir} --nproc 2" in err
    resumed = start("--resume", str(run_dir), "--nproc", "2")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    expected = json.loads((two_process_run / "metrics.json").read_text())
    assert json.loads((run_dir / "metrics.json").read_text()) == expected


# ---------------------------------------------------------------- a worker fails

def assert_one_message(err: str, title: str) -> None:
    """One error, told once: no traceback per rank, no torchrun log lines."""
    assert err.count("Error:") == 1 and title in err, err
    assert "Traceback" not in err and "torch.distributed" not in err, err


def test_a_user_error_in_the_workers_is_told_once(trained_run, tmp_path):
    import shutil

    from slotfill.training.rundir import RunDir

    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    RunDir(run_dir).write_status("interrupted")  # trained with 1 process; resumed with 2
    proc = start("--resume", str(run_dir), "--nproc", "2")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1
    assert_one_message(err, "The run was trained with 1 process(es), not 2")
    assert "resume it with --nproc 1" in err
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and "trained with 1 process" in status["reason"]


def test_a_killed_worker_is_told_once_and_the_run_resumes(corpus, two_process_run, tmp_path):
    run_dir = tmp_path / "run"
    proc = start_and_wait_for_an_epoch(corpus, run_dir)
    os.kill(worker_pid(proc.pid, rank=1), signal.SIGKILL)  # as the out-of-memory killer does
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 137, err
    assert_one_message(err, "Killed by SIGKILL (worker 1 of 2)")
    resume = f"slotfill train --resume {run_dir} --nproc 2"
    assert f"The run can continue from its last.pt: {resume}" in err
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and resume in status["reason"]
    resumed = start("--resume", str(run_dir), "--nproc", "2")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
    assert len((run_dir / "history.csv").read_text().splitlines()) == 4


def worker_pid(launcher: int, rank: int) -> int:
    """The process id of a worker of `launcher`, by the RANK in its environment."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == launcher and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    raise AssertionError(f"no worker with RANK={rank} under process {launcher}")
