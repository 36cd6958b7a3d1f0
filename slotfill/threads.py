"""CPU threads: how many intra-op threads torch uses and how they wait, so that training is
fast on an idle machine and stays fast beside other work. Imports no torch: `set_waiting`
must run before torch starts its OpenMP thread pool.

Why the wait policy matters: torch's intra-op threads meet at a barrier after every small
parallel region (hundreds per training step of a recurrent tagger). Threads that spin
while they wait (OMP_WAIT_POLICY=ACTIVE) cross each barrier in microseconds; threads that
sleep (PASSIVE) pay a wake-up each time, which costs 1.2x on one 2-core Intel VM and 2.8x
on an AMD EPYC one (benchmarks/speed.py). But spinning threads whose partner has been
descheduled by a neighbour burn their time slice, and every barrier then waits for the
scheduler: 15-23x slower epochs.

slotfill's training default (train.threads=0) takes both sides: threads spin while they
wait (`set_waiting("active")`), and `ThreadGovernor` sets the thread count to the cores
that are free (idle, or used by this process), checked every few seconds. Beside other
work that is one thread, which meets no barrier at all, and the pool's idle threads are
released (`release_idle_threads`) so that none is left spinning. The user's own OMP_*
settings and train.threads always win.
"""

from __future__ import annotations

import ctypes
import math
import os
import re
import sys
import time
from collections.abc import Callable

WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
_written: dict[str, str] = {}  # what slotfill itself put into os.environ in this process


def _users_settings() -> dict[str, str]:
    """The wait settings in the environment that slotfill did not write (the user's, or
    a parent process's choice)."""
    return {name: os.environ[name] for name in WAIT_SETTINGS
            if name in os.environ and _written.get(name) != os.environ[name]}


def set_waiting(policy: str | None) -> None:
    """How OpenMP threads wait: "active" (spin), "passive" (sleep at once) or None
    (OpenMP's default: spin a while, then sleep). The user's own setting wins; slotfill's
    earlier choice in this process is replaced. Effective only before torch is imported,
    so a no-op after."""
    if _users_settings() or "torch" in sys.modules:
        return
    unset_own_waiting()
    if policy is not None:
        os.environ["OMP_WAIT_POLICY"] = _written["OMP_WAIT_POLICY"] = policy.upper()


def unset_own_waiting() -> None:
    """Take the wait settings slotfill wrote out of the environment, so that child
    processes (the workers of --nproc) make their own choice rather than inherit it as
    if it were the user's."""
    for name in list(_written):
        if os.environ.get(name) == _written.pop(name):
            del os.environ[name]


def waiting_in_force() -> str:
    """How OpenMP threads wait in this process, in words: `active`, `passive`, `spin,
    then sleep` (OpenMP's default), or the user's own settings."""
    users = _users_settings()
    if users:
        return ", ".join(f"{k}={v}" for k, v in users.items()) + " (yours)"
    policy = os.environ.get("OMP_WAIT_POLICY", "").lower()
    return policy if policy in ("active", "passive") else "spin, then sleep"


def release_idle_threads() -> bool:
    """Ends the OpenMP pool's idle threads (`omp_pause_resource_all`, OpenMP 5.0), which
    would otherwise go on spinning under active waiting after the thread count drops;
    the next parallel region starts new ones. False where the runtime has no such call.
    Call only between parallel regions (in the training loop, between steps)."""
    pause = _omp_pause()
    return pause is not None and pause(1) == 0  # 1: omp_pause_soft


_OPENMP_LIBRARY = re.compile(r"/lib(gomp|iomp5|omp)[-.\w]*\.so[.\d]*$")
_pause = None  # omp_pause_resource_all, once found


def _omp_pause():
    """The OpenMP runtime's omp_pause_resource_all, from the copy torch loaded (found in
    /proc/self/maps: another copy of the library would have pools of its own)."""
    global _pause
    if _pause is None:
        try:
            with open("/proc/self/maps", encoding="utf-8") as f:
                paths = {line.split()[-1] for line in f if _OPENMP_LIBRARY.search(line.strip())}
            for path in sorted(paths):
                function = getattr(ctypes.CDLL(path), "omp_pause_resource_all", None)
                if function is not None:
                    function.argtypes, function.restype = [ctypes.c_int], ctypes.c_int
                    _pause = function
                    break
        except OSError:
            pass
    return _pause


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class FreeCores:
    """How many cores were free for this process since the last reading: cores that sat
    idle plus the cores this process itself kept busy (Linux /proc/stat; elsewhere
    `available` is False)."""

    def __init__(self, stat: str = "/proc/stat",
                 cpu_time: Callable[[], float] = time.process_time,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stat, self.cpu_time, self.clock = stat, cpu_time, clock
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.last = self._read()

    @property
    def available(self) -> bool:
        return self.last is not None

    def _read(self) -> tuple[float, float, float] | None:
        """(wall seconds, idle core-seconds of the machine, this process's CPU seconds)."""
        try:
            with open(self.stat, encoding="ascii") as f:
                fields = f.readline().split()
        except OSError:
            return None
        if not fields or fields[0] != "cpu" or len(fields) < 6:
            return None
        idle = (int(fields[4]) + int(fields[5])) / self.tick  # idle + iowait
        return self.clock(), idle, self.cpu_time()

    def measure(self) -> float | None:
        """Free cores (a float) over the time since the previous call; None when that is
        too short to tell (under 50 ms) or /proc/stat is unreadable."""
        now = self._read()
        if now is None or self.last is None or now[0] - self.last[0] < 0.05:
            return None
        (t0, idle0, own0), (t1, idle1, own1) = self.last, now
        self.last = now
        return max(0.0, (idle1 - idle0 + own1 - own0) / (t1 - t0))


class ThreadGovernor:
    """Sets the intra-op thread count to the free cores (a core counts when at least two
    thirds of it is free), between 1 and `most`, at most once per `every` seconds.
    `update()` is cheap enough to call after every training step."""

    def __init__(self, set_threads: Callable[[int], None], most: int | None = None,
                 every: float = 2.0, cores: FreeCores | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.set_threads, self.every, self.clock = set_threads, every, clock
        self.most = most or usable_cores()
        self.cores = cores or FreeCores(clock=clock)
        self.threads: int | None = None
        self.next_check = 0.0

    @staticmethod
    def threads_for(free: float, most: int) -> int:
        return max(1, min(most, math.floor(free + 1 / 3)))

    def start(self, settle: float = 0.1) -> int:
        """The first choice, from `settle` seconds of watching the machine."""
        if settle > 0:
            time.sleep(settle)
        return self.update(force=True)

    def update(self, force: bool = False) -> int | None:
        """Re-check the free cores if it is time; the thread count in use."""
        now = self.clock()
        if not force and now < self.next_check:
            return self.threads
        self.next_check = now + self.every
        free = self.cores.measure()
        if free is None:
            return self.threads
        threads = self.threads_for(free, self.most)
        if threads != self.threads:
            self.set_threads(threads)
            self.threads = threads
        return threads
