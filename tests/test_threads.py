"""CPU threads on shared machines: the OpenMP wait policy set before torch starts, the free
cores read from /proc/stat, and the thread count that follows them while training."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from conftest import CONFIGS, tiny_overrides

from slotfill.runtime import configure_threads
from slotfill.threads import WAIT_SETTINGS, FreeCores, ThreadGovernor, quiet_waiting


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def write_stat(path, idle_ticks: int, iowait_ticks: int = 0) -> None:
    path.write_text(f"cpu  500 0 200 {idle_ticks} {iowait_ticks} 0 0 0 0 0\n"
                    "cpu0 250 0 100 0 0 0 0 0 0 0\n")


@pytest.fixture
def machine(tmp_path):
    """A fake /proc/stat, clock and process CPU time: machine.advance(seconds, idle
    cores, own cores) lets time pass."""
    stat, clock, own = tmp_path / "stat", Clock(), {"cpu": 0.0}
    ticks = {"idle": 1000}
    write_stat(stat, ticks["idle"])
    tick = os.sysconf("SC_CLK_TCK")

    def advance(seconds: float, idle: float, mine: float) -> None:
        clock.now += seconds
        ticks["idle"] += round(idle * seconds * tick)
        own["cpu"] += mine * seconds
        write_stat(stat, ticks["idle"])

    cores = FreeCores(str(stat), cpu_time=lambda: own["cpu"], clock=clock)
    return cores, clock, advance


def test_free_cores_are_idle_cores_plus_our_own(machine):
    cores, clock, advance = machine
    assert cores.available
    advance(1.0, idle=0.5, mine=1.0)
    assert cores.measure() == pytest.approx(1.5, abs=0.02)
    advance(2.0, idle=2.0, mine=0.0)
    assert cores.measure() == pytest.approx(2.0, abs=0.02)
    advance(0.01, idle=1, mine=0)
    assert cores.measure() is None  # too short to tell


def test_unreadable_stat_means_no_governor(tmp_path):
    assert not FreeCores(str(tmp_path / "missing")).available
    assert FreeCores(str(tmp_path / "missing")).measure() is None


@pytest.mark.parametrize("free, most, threads", [
    (2.0, 2, 2), (1.8, 2, 2), (1.6, 2, 1), (1.0, 2, 1), (0.2, 2, 1), (0.0, 2, 1),
    (15.9, 16, 16), (12.7, 16, 13), (3.0, 2, 2)])
def test_a_core_counts_when_two_thirds_of_it_are_free(free, most, threads):
    assert ThreadGovernor.threads_for(free, most) == threads


def test_governor_follows_the_free_cores_every_few_seconds(machine):
    cores, clock, advance = machine
    chosen = []
    governor = ThreadGovernor(chosen.append, most=2, every=2.0, cores=cores, clock=clock)
    advance(0.1, idle=2.0, mine=0.0)
    assert governor.start(settle=0) == 2 and chosen == [2]  # an idle machine
    advance(1.0, idle=0.0, mine=1.0)  # a neighbour took a core
    assert governor.update() == 2 and chosen == [2]  # not yet time to look
    advance(1.5, idle=0.0, mine=1.0)
    assert governor.update() == 1 and chosen == [2, 1]
    advance(2.5, idle=0.0, mine=1.0)  # the neighbour stays: no change, no call
    assert governor.update() == 1 and chosen == [2, 1]
    advance(2.5, idle=1.0, mine=1.0)  # it left
    assert governor.update() == 2 and chosen == [2, 1, 2]


def test_quiet_waiting_respects_the_users_setting(monkeypatch):
    for name in WAIT_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    quiet_waiting()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("GOMP_SPINCOUNT", "10000")
    quiet_waiting()
    assert "OMP_WAIT_POLICY" not in os.environ


def test_the_command_line_sets_the_wait_policy_before_torch_starts():
    env = {k: v for k, v in os.environ.items() if k not in WAIT_SETTINGS}
    code = ("import os, sys; sys.argv = ['slotfill', 'configs']; from slotfill.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules or os.environ['OMP_WAIT_POLICY'] == 'PASSIVE'\n"
            "print(os.environ.get('OMP_WAIT_POLICY'))")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "PASSIVE"


def test_configure_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert configure_threads(1) is None and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's or --nproc's choice
        assert configure_threads(0) is None
        monkeypatch.delenv("OMP_NUM_THREADS")
        governor = configure_threads(0)
        if FreeCores().available:
            assert isinstance(governor, ThreadGovernor)
            assert torch.get_num_threads() == governor.threads
    finally:
        torch.set_num_threads(before)


def test_training_with_threads_0_consults_the_governor(monkeypatch, tmp_path):
    from slotfill.config import load_config
    from slotfill.training.prepare import prepare
    from slotfill.training.trainer import Trainer

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    calls = []
    monkeypatch.setattr(ThreadGovernor, "update",
                        lambda self, force=False: calls.append(force) or self.threads)
    monkeypatch.setattr(ThreadGovernor, "start", lambda self, settle=0.1: 1)
    monkeypatch.setattr(FreeCores, "available", property(lambda self: True))
    overrides = [o for o in tiny_overrides() if not o.startswith("train.threads")]
    cfg = load_config(CONFIGS / "bilstm.yaml", [*overrides, "train.threads=0"])
    before = torch.get_num_threads()
    try:
        trainer = Trainer(cfg, prepare(cfg))
        stats = trainer.train_epoch()
    finally:
        torch.set_num_threads(before)
    assert isinstance(trainer.threads, ThreadGovernor)
    assert len(calls) == stats.batches  # after every step
