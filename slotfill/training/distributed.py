"""Multi-process training on torch.distributed (DDP), inside each worker.

`slotfill train --nproc N` runs torchrun on this machine (workers.py); across machines,
users run `torchrun --nnodes ... --nproc-per-node ... -m slotfill train CONFIG`
themselves. Inside each worker, `Dist.from_env()` joins the process group (gloo on CPU,
nccl on GPU).
Every rank builds the same shuffled batch list each epoch (the same seeded generator, the
bucketed equivalent of DistributedSampler.set_epoch) and takes its own share; DDP
averages gradients, so weights stay identical on every rank. Dev scores come from span
counts summed over ranks, never from averaged F1, so every rank sees the same F1 and
makes the same early-stopping decision. Rank 0 alone writes files and prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from slotfill.analysis.metrics import Counts
from slotfill.training.workers import plan_devices


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @staticmethod
    def from_env(device: torch.device) -> Dist:
        """Join the process group torchrun describes in the environment, if any."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return Dist()
        if device.type == "cuda":  # one GPU per process (--nproc has checked this already)
            plan_devices("cuda", int(os.environ.get("LOCAL_WORLD_SIZE", world_size)),
                         by_hand=True)
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend, timeout=timedelta(minutes=10))
        return Dist(dist.get_rank(), dist.get_world_size(),
                    int(os.environ.get("LOCAL_RANK", "0")))

    def device(self, device: torch.device) -> torch.device:
        """One GPU per local rank; CPU as is."""
        if device.type == "cuda" and self.enabled:
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return device

    def share(self, batches: list[Tensor]) -> list[Tensor]:
        """This rank's batches: every world_size-th, wrapping around so that every rank
        runs the same number of steps (their gradients are averaged step by step)."""
        if not self.enabled:
            return batches
        per_rank = -(-len(batches) // self.world_size)  # ceil
        return [batches[(self.rank + i * self.world_size) % len(batches)]
                for i in range(per_rank)]

    def shard(self, items: list) -> list:
        """This rank's part of a list (for evaluation; parts differ by at most one)."""
        return items[self.rank::self.world_size] if self.enabled else items

    def sum_counts(self, counts: Counts) -> Counts:
        if not self.enabled:
            return counts
        total = Counts()
        for part in self.gather(counts):
            total = total.merge(part)
        return total

    def any(self, flag: bool) -> bool:
        """True on every rank if it is true on any (e.g. a stop request)."""
        if not self.enabled:
            return flag
        value = torch.tensor([int(flag)])
        if dist.get_backend() == "nccl":
            value = value.cuda()
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def mean(self, value: float) -> float:
        """The mean of a number over ranks (e.g. each rank's training loss)."""
        if not self.enabled:
            return value
        return sum(self.gather(value)) / self.world_size

    def gather(self, obj: Any) -> list[Any]:
        if not self.enabled:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's value, on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()
