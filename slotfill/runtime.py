"""Process-level torch settings: device choice, threads, seeding."""

from __future__ import annotations

import random

import torch

from slotfill.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """`auto`: cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is cuda, but no CUDA device is available",
                          "use train.device=cpu or train.device=auto")
    return torch.device(name)


def configure_threads(threads: int) -> None:
    if threads > 0:
        torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
