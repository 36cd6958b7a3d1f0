"""A disk that fills (or cannot be written) in the middle of a run's writes: each write
site (checkpoints, history, metrics, TensorBoard, predict's --output) fails with a clear
error naming the file and the cause, a non-zero exit, nothing half-written, the previous
files intact, and `--resume` finishing the run once the fault is gone.

The fault is injected where slotfill opens the file it writes (atomic.py's temporary
file), as ENOSPC from `write` after some bytes: torch.save then fails as it does on a
real full disk (a RuntimeError "unexpected pos ..." hiding the OSError)."""

from __future__ import annotations

import builtins
import errno
import json
import os
from pathlib import Path

import pytest
from conftest import CONFIGS, tiny_overrides
from typer.testing import CliRunner

from slotfill.atomic import atomic_write
from slotfill.cli import app
from slotfill.errors import WriteError
from slotfill.models.checkpoint import load_checkpoint

runner = CliRunner()
ARGS = [str(CONFIGS / "bilstm.yaml"), *tiny_overrides(epochs=2), "train.patience=0",
        "train.seed=5"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


class FullDisk:
    """`open` for slotfill.atomic: the `nth` write of the file named `target` runs out
    of space after `after` bytes (errno `code`); every other file is written normally."""

    def __init__(self, target: str, nth: int = 1, after: int = 100,
                 code: int = errno.ENOSPC) -> None:
        self.target, self.nth, self.after, self.code = target, nth, after, code
        self.opened = 0

    def __call__(self, file, mode="r", **options):
        real = builtins.open(file, mode, **options)
        if not Path(file).name.startswith(f".{self.target}."):
            return real
        self.opened += 1
        return _Failing(real, self.after, self.code) if self.opened == self.nth else real


class _Failing:
    def __init__(self, real, after: int, code: int) -> None:
        self.real, self.left, self.code = real, after, code

    def write(self, data):
        self.left -= len(data)
        if self.left < 0:
            raise OSError(self.code, os.strerror(self.code))
        return self.real.write(data)

    def __getattr__(self, name):
        return getattr(self.real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.real.close()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*.tmp"))


def test_atomic_write_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    monkeypatch.setattr("slotfill.atomic.open", FullDisk("metrics.json", after=2),
                        raising=False)
    with pytest.raises(WriteError) as caught:
        atomic_write(target, lambda f: f.write(b"new contents"))
    assert caught.value.title == f"Cannot write {target}: No space left on device"
    assert "free some space" in caught.value.detail and caught.value.full
    assert target.read_text() == "old" and leftovers(tmp_path) == []


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    run = tmp_path_factory.mktemp("reference") / "run"
    assert invoke("train", *ARGS, "--output", run).exit_code == 0
    return json.loads((run / "metrics.json").read_text())


@pytest.mark.parametrize("target, nth, intact", [
    ("best.pt", 1, []),  # the very first checkpoint: nothing to keep, resume starts over
    ("last.pt", 1, ["best.pt"]),  # the 3 MB tmpfs: best.pt written, last.pt not
    ("last.pt", 2, ["best.pt", "last.pt"]),
    ("history.csv", 2, ["best.pt", "last.pt", "history.csv"]),
    ("metrics.json", 1, ["best.pt", "last.pt", "history.csv"]),
    ("metrics.md", 1, ["best.pt", "last.pt", "history.csv", "metrics.json"]),
])
def test_full_disk_during_training_then_resume(target, nth, intact, reference, tmp_path,
                                               monkeypatch):
    run = tmp_path / "run"
    disk = FullDisk(target, nth)
    monkeypatch.setattr("slotfill.atomic.open", disk, raising=False)
    result = invoke("train", *ARGS, "--output", run)
    assert disk.opened >= nth  # the fault was hit
    assert result.exit_code == 1, result.output
    assert f"Cannot write {run / target}: No space left on device" in result.stderr
    assert f"slotfill train --resume {run}" in result.stderr
    assert "Traceback" not in result.output and "enforce fail" not in result.output
    assert leftovers(run) == []
    for name in intact:  # what was written before is whole
        assert (run / name).stat().st_size > 0
        if name.endswith(".pt"):
            load_checkpoint(run / name)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and status["unwritten"] == str(run / target)
    assert status["reason"].startswith(f"Cannot write {run / target}: No space left")
    assert "enforce fail" not in status["reason"]

    monkeypatch.undo()  # space is freed
    result = invoke("train", "--resume", run)
    assert result.exit_code == 0, result.output
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert json.loads((run / "metrics.json").read_text()) == reference
    assert leftovers(run) == []


def test_a_full_disk_under_tensorboard_is_named_too(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    from torch.utils.tensorboard import SummaryWriter
    monkeypatch.setattr(SummaryWriter, "flush", full)
    result = invoke("train", *ARGS, "train.tensorboard=true", "--output", run)
    assert result.exit_code == 1, result.output
    assert f"Cannot write {run / 'tensorboard'}: No space left on device" in result.stderr
    assert "Traceback" not in result.output
    load_checkpoint(run / "last.pt")


def test_training_warns_when_the_disk_looks_too_small(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 2000, 2000))
    result = invoke("train", *ARGS, "train.epochs=1", "--output", tmp_path / "run")
    assert result.exit_code == 0, result.output  # a warning, not a refusal
    assert "warning: only 2 KB free on the disk that holds" in result.stderr
    assert "--resume" in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_folder_without_write_permission(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = invoke("train", *ARGS, "--output", locked / "run")
    finally:
        locked.chmod(0o700)
    assert result.exit_code == 1, result.output
    assert f"Cannot write {locked / 'run'}: Permission denied" in result.stderr
    assert "Traceback" not in result.output


def test_full_disk_under_predict_output(trained_run, tmp_path, monkeypatch):
    source = tmp_path / "in.txt"
    source.write_text("fly to boston\n" * 600)  # several batches
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    monkeypatch.setattr("slotfill.atomic.open", FullDisk("out.jsonl", after=20_000),
                        raising=False)
    result = invoke("predict", "-m", trained_run, "-f", source, "--output", target)
    assert result.exit_code == 1, result.output
    assert f"Cannot write {target}: No space left on device" in result.stderr
    assert "Traceback" not in result.output
    assert target.read_text() == "old\n" and leftovers(tmp_path) == []


def test_full_disk_under_export(trained_run, tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr("slotfill.atomic.open", FullDisk("model.onnx"), raising=False)
    result = invoke("export", "-m", trained_run, "--output", tmp_path / "model.onnx")
    assert result.exit_code == 1, result.output
    assert f"Cannot write {tmp_path / 'model.onnx'}: No space left" in result.stderr
    assert not (tmp_path / "model.onnx").exists() and leftovers(tmp_path) == []
