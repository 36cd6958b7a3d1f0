"""`slotfill train --nproc N`: devices checked before any worker starts (device counts
faked, so this runs on the CPU), the cores shared among workers, and a worker's failure
told as one message. The real multi-process runs are in test_distributed.py."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest
import torch
from conftest import TINY
from typer.testing import CliRunner

from slotfill.cli import app
from slotfill.errors import ConfigError
from slotfill.training import workers
from slotfill.training.distributed import Dist
from slotfill.training.workers import REPORTS_ENV, first_failure, plan_devices

runner = CliRunner()


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this machine has `n` GPUs: gpus(n)."""
    def fake(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
    return fake


@pytest.fixture
def launched(monkeypatch):
    """Records the workers `slotfill train --nproc` would start, starting none."""
    calls = []

    def fake_launch(nproc, argv):
        calls.append((nproc, argv))
        return 0
    monkeypatch.setattr("slotfill.cli.train.launch", fake_launch)
    return calls


def train(tmp_path, *overrides):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "bilstm", f"data.path={TINY}", *overrides,
                                 "--nproc", "2", "--output", str(run)])
    return result, run


def test_auto_device_with_fewer_gpus_than_processes_stops_before_any_worker(
        gpus, launched, tmp_path):
    gpus(1)  # the crash: NCCL "Duplicate GPU detected" with 2 workers on 1 GPU
    result, run = train(tmp_path)
    assert result.exit_code == 2, result.output
    assert "--nproc 2 needs 2 GPUs with train.device=auto; this machine has 1 GPU" \
        in result.output
    assert "use --nproc 1 to train on the GPU" in result.output
    assert "train.device=cpu for 2 CPU processes" in result.output
    assert launched == [] and not run.exists()


def test_cuda_device_with_fewer_gpus_than_processes_stops_before_any_worker(
        gpus, launched, tmp_path):
    gpus(1)
    result, run = train(tmp_path, "train.device=cuda")
    assert result.exit_code == 2 and "needs 2 GPUs with train.device=cuda" in result.output
    gpus(0)
    result, run = train(tmp_path, "train.device=cuda")
    assert result.exit_code == 2 and "no CUDA device is available" in result.output
    assert launched == [] and not run.exists()


@pytest.mark.parametrize("count, where", [(0, "CPU, gloo"), (2, "one GPU each, nccl"),
                                          (4, "one GPU each, nccl")])
def test_enough_devices_start_the_workers(gpus, launched, tmp_path, count, where):
    gpus(count)
    result, run = train(tmp_path)
    assert result.exit_code == 0, result.output
    assert f"starting 2 worker processes ({where})" in result.output
    assert launched == [(2, ["train", "bilstm", f"data.path={TINY}", "--output", str(run)])]


def test_resume_checks_the_devices_of_the_runs_config(gpus, launched, trained_run, tmp_path):
    gpus(1)
    result = runner.invoke(app, ["train", "--resume", str(trained_run), "--nproc", "2"])
    assert result.exit_code == 0  # its config says train.device=cpu
    config = (trained_run / "config.yaml").read_text()
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(config.replace("device: cpu", "device: auto"))
    result = runner.invoke(app, ["train", "--resume", str(run), "--nproc", "2"])
    assert result.exit_code == 2 and "needs 2 GPUs" in result.output
    assert len(launched) == 1


def test_workers_started_by_hand_check_their_gpus_before_joining(gpus, monkeypatch):
    gpus(1)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(torch.distributed, "init_process_group",
                        lambda *a, **k: pytest.fail("joined the process group"))
    with pytest.raises(ConfigError, match="2 processes on this machine need 2 GPUs"):
        Dist.from_env(torch.device("cuda"))


def test_cpu_asked_for_never_looks_at_the_gpus(gpus):
    gpus(1)
    assert plan_devices("cpu", 8) == "cpu"
    assert plan_devices("auto", 1) == "cuda"


def test_each_worker_gets_its_share_of_the_cores(monkeypatch):
    seen = {}

    def fake_torchrun(args):
        seen.update(args=args, threads=os.environ.get("OMP_NUM_THREADS"),
                    reports=os.environ.get(REPORTS_ENV))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("torch.distributed.run.main", fake_torchrun)
    monkeypatch.setattr(workers, "usable_cores", lambda: 16)
    assert workers.launch(4, ["train", "x.yaml"]) == 0
    assert seen["threads"] == "4"
    assert seen["args"][-4:] == ["-m", "slotfill", "train", "x.yaml"]
    assert seen["reports"] and REPORTS_ENV not in os.environ  # set only while they run


# ---------------------------------------------------------------- which failure is told

def report(folder, rank, at, title, trace="", detail="what to fix", code=1):
    (folder / f"rank-{rank}.json").write_text(json.dumps(
        {"rank": rank, "time": at, "title": title, "detail": detail, "exit_code": code,
         "traceback": trace}))


def exited(code, at=0):
    return SimpleNamespace(exitcode=code, timestamp=at)


def test_a_user_error_is_told_before_its_consequences(tmp_path):
    report(tmp_path, 0, 1.0, "RuntimeError: Connection closed by peer", trace="...")
    report(tmp_path, 1, 2.0, "The corpus changed", code=1)
    failure = first_failure(tmp_path, {0: exited(1), 1: exited(1)})
    assert (failure.rank, failure.title, failure.detail) == (1, "The corpus changed",
                                                             "what to fix")
    assert failure.user_error


def test_a_killed_worker_is_told_before_its_peers_errors(tmp_path):
    report(tmp_path, 0, 1.0, "RuntimeError: Connection closed by peer", trace="...")
    failure = first_failure(tmp_path, {0: exited(1, 5), 1: exited(-9, 6)})
    assert failure.rank == 1 and failure.title == "Killed by SIGKILL"
    assert "out of memory" in failure.detail and failure.exit_code == 137
    assert not failure.user_error


def test_the_earliest_bug_is_told(tmp_path):
    report(tmp_path, 1, 2.0, "ValueError: late", trace="tb1")
    report(tmp_path, 0, 1.0, "KeyError: early", trace="tb0")
    failure = first_failure(tmp_path, {0: exited(1), 1: exited(1)})
    assert (failure.rank, failure.title, failure.trace) == (0, "KeyError: early", "tb0")
    assert first_failure(tmp_path / "none", {1: exited(3)}).title == "Exited with status 3"


def test_a_worker_writes_its_failure_for_the_launcher(tmp_path, monkeypatch):
    from slotfill.errors import DataError
    from slotfill.training.workers import reporting_failures

    class Done(Exception):
        """Ends the command as intended (as typer.Exit does)."""

    @reporting_failures(Done)
    def command(error):
        raise error

    monkeypatch.setenv("RANK", "3")
    with pytest.raises(DataError):  # not a worker of `launch`: unchanged
        command(DataError("x", "y"))
    monkeypatch.setenv(REPORTS_ENV, str(tmp_path))
    with pytest.raises(Done):
        command(Done())
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SystemExit) as stopped:
        command(DataError("Bad corpus", "fix line 3"))
    assert stopped.value.code == 1
    written = json.loads((tmp_path / "rank-3.json").read_text())
    assert (written["title"], written["detail"], written["traceback"]) == \
        ("Bad corpus", "fix line 3", "")
    with pytest.raises(SystemExit):
        command(ZeroDivisionError("division by zero\nmore"))
    written = json.loads((tmp_path / "rank-3.json").read_text())
    assert written["title"] == "ZeroDivisionError: division by zero"
    assert "Traceback" in written["traceback"]
