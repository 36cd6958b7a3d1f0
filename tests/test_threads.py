"""CPU threads: the OpenMP wait policy set before torch starts, the free cores read from
/proc/stat, the thread count that follows them while training, and the idle threads
released when that count drops."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from conftest import CONFIGS, tiny_overrides

from slotfill import threads
from slotfill.runtime import ThreadSetup, configure_threads, set_threads
from slotfill.threads import WAIT_SETTINGS, FreeCores, ThreadGovernor, set_waiting


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


@pytest.fixture
def before_torch(monkeypatch):
    """No wait settings in the environment, nothing written by slotfill, and torch not
    yet imported (as far as set_waiting can tell)."""
    for name in WAIT_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "_written", {})
    monkeypatch.delitem(sys.modules, "torch")


def test_set_waiting_replaces_its_own_choice_but_never_the_users(before_torch, monkeypatch):
    set_waiting("passive")
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert threads.waiting_in_force() == "passive"
    set_waiting("active")  # slotfill's own earlier choice is replaced
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    set_waiting(None)  # OpenMP's default
    assert "OMP_WAIT_POLICY" not in os.environ
    assert threads.waiting_in_force() == "spin, then sleep"
    set_waiting("active")
    threads.unset_own_waiting()  # what --nproc's workers inherit: no choice of slotfill's
    assert "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.setenv("GOMP_SPINCOUNT", "10000")  # the user's
    set_waiting("active")
    assert "OMP_WAIT_POLICY" not in os.environ
    assert threads.waiting_in_force() == "GOMP_SPINCOUNT=10000 (yours)"


def test_set_waiting_after_torch_started_changes_nothing(monkeypatch):
    for name in WAIT_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "_written", {})
    set_waiting("active")  # this module imported torch: too late to matter
    assert "OMP_WAIT_POLICY" not in os.environ


def wait_policy_after(*args: str) -> str:
    """Whether `slotfill ARGS` imported torch, and the OMP_WAIT_POLICY it left, in a
    fresh process started without any wait settings."""
    env = {k: v for k, v in os.environ.items() if k not in WAIT_SETTINGS}
    code = ("import os, sys; from slotfill.cli import main\n"
            f"sys.argv = ['slotfill', *{list(args)!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, os.environ.get('OMP_WAIT_POLICY'))")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True)
    return result.stdout.strip().splitlines()[-1]


def test_commands_wait_passively_and_training_actively():
    assert wait_policy_after("configs") == "False PASSIVE"
    assert wait_policy_after("train", "bilstm", "--dry-run", *tiny_overrides()) == "True ACTIVE"


def spinning_share(release: bool) -> float:
    """CPU seconds per second of a process with actively waiting threads that ran
    two-thread work and then dropped to one thread, releasing the idle ones or not."""
    code = f"""
import time, torch
from slotfill.runtime import set_threads
torch.set_num_threads(2)
x, w = torch.randn(256, 400), torch.randn(400, 800)
for _ in range(200):
    (x @ w).tanh_()
(set_threads if {release} else torch.set_num_threads)(1)
"""
    env = {**{k: v for k, v in os.environ.items() if k not in WAIT_SETTINGS},
           "OMP_WAIT_POLICY": "ACTIVE"}
    return share_while_sleeping(code, env)


def share_while_sleeping(code: str, env: dict[str, str]) -> float:
    """CPU seconds per second of a fresh process that ran `code` and then sleeps: what
    its idle threads still burn."""
    code += """
cpu, wall = time.process_time(), time.perf_counter()
time.sleep(0.5)
print((time.process_time() - cpu) / (time.perf_counter() - wall))
"""
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True)
    return float(result.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
                    reason="needs Linux and two cores")
def test_fewer_threads_leave_none_spinning():
    assert spinning_share(release=False) > 0.5  # an idle thread spins on: what release is for
    assert spinning_share(release=True) < 0.2


def test_configure_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        fixed = configure_threads(1)
        assert fixed.governor is None and torch.get_num_threads() == 1
        assert fixed.describe().startswith("threads: 1 (train.threads=1), waiting: ")
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's or --nproc's choice
        assert configure_threads(0).chosen_by == "OMP_NUM_THREADS=1"
        monkeypatch.delenv("OMP_NUM_THREADS")
        torch.set_num_threads(before)
        setup = configure_threads(0)
        if FreeCores().available:
            assert isinstance(setup.governor, ThreadGovernor)
            assert torch.get_num_threads() == setup.governor.threads
            assert "(following the free cores)" in setup.describe()
    finally:
        set_threads(before)


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
    assert isinstance(trainer.threads, ThreadSetup)
    assert isinstance(trainer.threads.governor, ThreadGovernor)
    assert len(calls) == stats.batches  # after every step


def share_after_training(overrides: list[str], output) -> float:
    """CPU seconds per second of a process sleeping after `slotfill.train` returned."""
    code = f"""
import time, slotfill
slotfill.train("bilstm", overrides={overrides!r}, output={str(output)!r})
"""
    env = {k: v for k, v in os.environ.items() if k not in (*WAIT_SETTINGS, "OMP_NUM_THREADS")}
    return share_while_sleeping(code, env)


@pytest.mark.skipif(not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
                    reason="needs Linux and two cores")
def test_no_thread_spins_on_after_training_returns(tmp_path):
    """slotfill.train sets active waiting for the process; when it returns, the pool's
    idle threads have ended rather than spin on beside what the caller does next."""
    overrides = [o for o in tiny_overrides() if not o.startswith("train.threads=")]
    assert share_after_training([*overrides, "train.threads=2", "model.hidden_size=200"],
                                tmp_path / "run") < 0.2
