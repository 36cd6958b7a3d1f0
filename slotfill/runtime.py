"""Process-level torch settings: device choice, threads, seeding."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from slotfill.errors import ConfigError
from slotfill.threads import ThreadGovernor


def resolve_device(name: str) -> torch.device:
    """`auto`: cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is cuda, but no CUDA device is available",
                          "use train.device=cpu or train.device=auto")
    return torch.device(name)


def configure_threads(threads: int) -> ThreadGovernor | None:
    """`threads` intra-op threads; 0: as many as cores are free, followed while training
    through the governor returned (None where the count is fixed: by `threads`, by
    OMP_NUM_THREADS, which the user or `--nproc` set, or where the free cores cannot be
    read)."""
    if threads > 0:
        torch.set_num_threads(threads)
        return None
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    governor = ThreadGovernor(torch.set_num_threads, most=torch.get_num_threads())
    if not governor.cores.available:
        return None
    governor.start()
    return governor


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
