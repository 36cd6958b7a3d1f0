"""CPU threads on machines shared with other work. Imports no torch: `quiet_waiting` must
run before torch starts its OpenMP thread pool.

Why a neighbour can cost 3-20x instead of the 2x a fair share of two cores would cost:
torch's intra-op threads meet at a barrier after every small parallel region (hundreds
per training step of a recurrent tagger). By default OpenMP threads spin while they wait,
so a thread whose partner has been descheduled burns its own time slice instead of
handing the core over, and every barrier then waits for the scheduler. Two remedies:

- `quiet_waiting()`: waiting threads sleep at once (OMP_WAIT_POLICY=PASSIVE), unless the
  user chose a wait policy. Measured on 2 busy cores (benchmarks/speed.py): an epoch with
  two threads went from 35-63 s to 6-8 s.
- `FreeCores` + `ThreadGovernor`: with train.threads=0, training uses as many threads as
  cores are free (idle, or used by this process), checked every few seconds; one thread
  beside a busy neighbour never meets a barrier at all.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def quiet_waiting() -> None:
    """OpenMP threads sleep rather than spin while they wait (the user's own setting of
    OMP_WAIT_POLICY, GOMP_SPINCOUNT or KMP_BLOCKTIME wins). Effective only before torch
    is imported; harmless after."""
    if not any(name in os.environ for name in WAIT_SETTINGS):
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


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
