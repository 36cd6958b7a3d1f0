"""Process-level torch settings: device choice, threads, seeding."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from slotfill.errors import ConfigError
from slotfill.threads import ThreadGovernor, release_idle_threads, waiting_in_force


def resolve_device(name: str) -> torch.device:
    """`auto`: cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is cuda, but no CUDA device is available",
                          "use train.device=cpu or train.device=auto")
    return torch.device(name)


@dataclass
class ThreadSetup:
    """The intra-op threads a run uses, who chose them, and how waiting threads wait;
    `governor` follows the free cores while training (None where the count is fixed)."""

    chosen_by: str  # "following the free cores", "train.threads=N", "OMP_NUM_THREADS=N"
    waiting: str  # threads.waiting_in_force()
    governor: ThreadGovernor | None = None

    def update(self) -> None:
        """After every training step: fewer threads while other work needs the cores."""
        if self.governor is not None:
            self.governor.update()

    def describe(self) -> str:
        return (f"threads: {torch.get_num_threads()} ({self.chosen_by}), "
                f"waiting: {self.waiting}")


def set_threads(count: int) -> None:
    """`count` intra-op threads; when that is fewer, the pool's idle threads end, so that
    none spins on beside other work (threads.py says why)."""
    fewer = count < torch.get_num_threads()
    torch.set_num_threads(count)
    if fewer:
        release_idle_threads()


def configure_threads(threads: int) -> ThreadSetup:
    """`threads` intra-op threads; 0: as many as cores are free, followed while training
    by a governor (unless OMP_NUM_THREADS, which the user or `--nproc` set, fixes the
    count, or the free cores cannot be read: then torch's count)."""
    waiting = waiting_in_force()
    if threads > 0:
        set_threads(threads)
        return ThreadSetup(f"train.threads={threads}", waiting)
    if os.environ.get("OMP_NUM_THREADS"):
        return ThreadSetup(f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}", waiting)
    governor = ThreadGovernor(set_threads, most=torch.get_num_threads())
    if not governor.cores.available:
        return ThreadSetup("one per core; free cores unreadable here", waiting)
    governor.start()
    return ThreadSetup("following the free cores", waiting, governor)


# Below this many tokens in a batch, splitting each step's matrix products over several
# CPU threads costs more in wake-ups than it saves (benchmarks/speed.py, latency).
SMALL_BATCH_TOKENS = 32


@contextmanager
def threads_for_batch(tokens: int, device: torch.device) -> Iterator[None]:
    """One intra-op thread while a small CPU batch runs, then the previous count again."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1 or tokens >= SMALL_BATCH_TOKENS:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
