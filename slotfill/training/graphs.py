"""Training steps replayed from CUDA graphs: one graph per batch shape.

A tagger's training step on a GPU is bound by kernel launches and host syncs, not by
arithmetic (a BiLSTM step on ATIS is some hundred small kernels). A CUDA graph records a
whole step once (gathering the batch from the device-resident split, word dropout,
forward, backward, gradient clipping, the fused optimiser step) and replays it with one
launch. Bucketed batches have one length each, so an epoch has a few dozen shapes
(B, T); each gets its graph, recorded the first time it appears.

Recording needs a few eager warm-up steps; their effect on the weights, the optimiser
state and the random generators is undone, so a graph changes nothing but the speed.
The optimiser must be capturable, with its learning rate in a device tensor that the
schedule updates in place (optimizers.make_optimizer).

`unsupported()` says why a run cannot use graphs (then the trainer runs steps eagerly):
not on CUDA, several processes (DDP), random batching or character features (shapes
and syncs that vary within a step), fp16 (the loss scaler syncs with the host).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from slotfill.config import Config
from slotfill.data.batching import Batch, EncodedSplit, long_ids

Step = Callable[[Batch], tuple[Tensor, Tensor]]  # a batch -> (loss, gradient norm)


def unsupported(cfg: Config, device: torch.device, distributed: bool) -> str | None:
    """Why this run cannot replay its steps from CUDA graphs; None when it can."""
    if device.type != "cuda":
        return "not on a CUDA device"
    if distributed:
        return "several processes (DistributedDataParallel)"
    if cfg.train.batching != "bucket":
        return "train.batching=random (padded batches: masks and varying shapes)"
    if cfg.model.char != "none":
        return "character features (their distinct spellings vary per batch)"
    if cfg.train.precision == "fp16":
        return "train.precision=fp16 (the loss scaler reads overflow flags on the host)"
    if cfg.distill.teachers is not None:
        return "distill.teachers (the soft targets are re-attached to each epoch's data)"
    if cfg.model.transformer is not None:
        return "model.transformer (sub-word lengths vary within a batch of equal word lengths)"
    if cfg.train.augment:
        return "train.augment (the training data is re-encoded every epoch)"
    return None


class CudaGraph:
    """torch.cuda.CUDAGraph behind the small interface GraphedSteps uses."""

    def __init__(self) -> None:
        self.graph = torch.cuda.CUDAGraph()

    def record(self, run: Callable[[], tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        with torch.cuda.graph(self.graph):  # records the kernels; runs none of them
            return run()

    def replay(self) -> None:
        self.graph.replay()

    @staticmethod
    def warm_up(run: Callable[[], object], times: int) -> None:
        """Eager runs on a side stream, as recording requires (cuDNN and cuBLAS set up
        their workspaces, autograd its buffers)."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(times):
                run()
        torch.cuda.current_stream().wait_stream(side)


class RecordingFailed(RuntimeError):
    """A step could not be recorded; the trainer goes on without graphs."""


@dataclass
class _Recorded:
    graph: CudaGraph
    index: Tensor  # (B,) the static input: positions of the batch in the split
    loss: Tensor  # () the static outputs, rewritten by every replay
    norm: Tensor


class GraphedSteps:
    """`step(index, width)` runs the training step for the utterances at `index` (a
    device tensor; all of length `width`) from the graph of its shape, recording it on
    first use. Returns the loss and gradient norm (device tensors of this step)."""

    def __init__(self, data: EncodedSplit, step: Step, model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, graph_type=CudaGraph,
                 warm_ups: int = 2) -> None:
        self.data, self.run_step, self.model, self.optimizer = data, step, model, optimizer
        self.graph_type, self.warm_ups = graph_type, warm_ups
        self.graphs: dict[tuple[int, int], _Recorded] = {}

    def step(self, index: Tensor, width: int) -> tuple[Tensor, Tensor]:
        key = (len(index), width)
        recorded = self.graphs.get(key) or self._record(index, width)
        self.graphs[key] = recorded
        recorded.index.copy_(index)  # device to device: no sync
        recorded.graph.replay()
        return recorded.loss.clone(), recorded.norm.clone()

    def _batch(self, index: Tensor, width: int) -> Batch:
        """The batch at `index`, gathered on the device (lengths are all `width`)."""
        data = self.data

        def rows(t: Tensor | None) -> Tensor | None:  # int64 ids from a compact split too
            return None if t is None else long_ids(t.index_select(0, index)[:, :width])
        lengths = torch.full((len(index),), width, dtype=torch.long)  # CPU, as in make_batch
        intents = None if data.intents is None else data.intents.index_select(0, index)
        return Batch(rows(data.words), lengths, None, index, rows(data.tags), intents,
                     features=rows(data.features))

    def _record(self, index: Tensor, width: int) -> _Recorded:
        static = index.clone()

        def run() -> tuple[Tensor, Tensor]:
            self.optimizer.zero_grad(set_to_none=True)
            return self.run_step(self._batch(static, width))

        saved = self._save()
        try:
            self.graph_type.warm_up(run, self.warm_ups)
            graph = self.graph_type()
            self.optimizer.zero_grad(set_to_none=True)  # the graph allocates its gradients
            loss, norm = graph.record(run)
        except RuntimeError as exc:  # an operation that cannot be recorded
            raise RecordingFailed(str(exc).strip().splitlines()[0]) from exc
        finally:
            self._restore(saved)
        return _Recorded(graph, static, loss, norm)

    # The warm-up steps must leave no trace on the weights and the optimiser state. The
    # CPU generator is restored too; the CUDA one is not (a recorded graph holds on to
    # its state), so on a GPU the warm-ups only shift the random stream (dropout masks).
    def _save(self) -> dict:
        state = {p: {k: v.clone() for k, v in s.items() if isinstance(v, Tensor)}
                 for p, s in self.optimizer.state.items()}
        return {"params": [p.detach().clone() for p in self.model.parameters()],
                "state": state, "rng": torch.get_rng_state()}

    @torch.no_grad()
    def _restore(self, saved: dict) -> None:
        for p, value in zip(self.model.parameters(), saved["params"]):
            p.copy_(value)
        for p, s in self.optimizer.state.items():
            before = saved["state"].get(p, {})
            for k, v in s.items():
                if isinstance(v, Tensor):  # state made by the warm-up: fresh Adam is zeros
                    v.copy_(before[k]) if k in before else v.zero_()
        torch.set_rng_state(saved["rng"])
