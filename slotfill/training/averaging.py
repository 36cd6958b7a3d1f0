"""An exponential moving average of the weights (Polyak averaging; `train.ema`).

After every optimiser step each averaged tensor moves towards the trained one:
    avg <- avg + (1 - d_t) (w - avg),    d_t = min(decay, (1 + t) / (10 + t))
so that the early, random weights fade quickly. The average sits between the points that
SGD-like training bounces among, and usually scores better than the last of them; dev
scores, best.pt and the final scores use it, while training goes on from the raw weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


class WeightAverage:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model, self.decay, self.steps = model, decay, 0
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.average = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        torch._foreach_lerp_(self.average, [p.detach() for p in self.params], 1 - decay)

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[nn.Module]:
        """The model holding the averaged weights for the duration (then its own again)."""
        with torch.no_grad():
            trained = [p.detach().clone() for p in self.params]
            for p, a in zip(self.params, self.average):
                p.copy_(a)
        try:
            yield self.model
        finally:
            with torch.no_grad():
                for p, t in zip(self.params, trained):
                    p.copy_(t)

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "average": [a.cpu() for a in self.average]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = state["steps"]
        with torch.no_grad():
            for a, saved in zip(self.average, state["average"]):
                a.copy_(saved)
