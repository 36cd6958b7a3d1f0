"""One training pass at a time: model, optimiser, schedule and batches, with the state
needed to continue exactly where a pass stopped (`state_dict` / `load_state_dict`)."""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from slotfill.config import Config
from slotfill.data.batching import Batch, batches_for, encode_split, make_batch
from slotfill.data.vocab import UNK, Vocabs
from slotfill.errors import ConfigError, RunDirError
from slotfill.models import build_model
from slotfill.models.checkpoint import transfer_weights
from slotfill.runtime import configure_threads, resolve_device, seed_everything
from slotfill.training.augment import SlotSubstitution
from slotfill.training.averaging import WeightAverage
from slotfill.training.distributed import Dist
from slotfill.training.prepare import Prepared


@dataclass
class EpochStats:
    loss: float  # mean training loss over the epoch's batches
    grad_norm: float  # mean gradient norm, before clipping
    batches: int
    tokens: int
    seconds: float


class StopRequested(Exception):
    """Raised between batches when `should_stop` says so; the pass can be resumed."""


class Trainer:
    """The model, its optimiser and the tensorized training data; `train_epoch` runs one
    pass. Seeds, threads and device are set up here, so runs are reproducible."""

    def __init__(self, cfg: Config, prepared: Prepared,
                 should_stop: Callable[[], bool] = lambda: False, dist: Dist = Dist()) -> None:
        tc = cfg.train
        seed_everything(tc.seed)
        configure_threads(tc.threads)
        self.cfg, self.vocabs, self.should_stop, self.dist = cfg, prepared.vocabs, \
            should_stop, dist
        self.device = dist.device(resolve_device(tc.device))
        examples = prepared.corpus["train"]
        self.data = encode_split(examples, self.vocabs, labels=True).to(self.device)
        self.augment = (SlotSubstitution(examples, tc.augment, self.vocabs.tags,
                                         self.vocabs.gazetteers, tc.seed)
                        if tc.augment else None)
        self.model = build_model(cfg.model, self.vocabs, (e.tags for e in examples))
        if prepared.initial is not None:  # train.init: start from another run's weights
            transfer_weights(self.model, prepared.initial.model_state)
        self.model.to(self.device)
        self.model.set_label_smoothing(tc.label_smoothing)
        self.average = WeightAverage(self.model, tc.ema) if tc.ema else None
        self.forward = self.model  # the module whose call computes the training loss
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel
            self.forward = DistributedDataParallel(self.model)  # averages gradients
            torch.manual_seed(tc.seed + dist.rank)  # own dropout masks on every rank
        self.optimizer = make_optimizer(cfg, self.model)
        self.word_dropout = WordDropout(examples, self.vocabs, cfg.model.word_dropout,
                                        self.device)
        self.generator = torch.Generator().manual_seed(tc.seed)  # batch order, all ranks
        if tc.precision != "fp32" and self.device.type != "cuda":
            raise ConfigError(f"train.precision={tc.precision} needs a CUDA device",
                              "use train.precision=fp32 on the CPU (oneDNN's recurrent "
                              "kernels have no reduced-precision path on most CPUs)")
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(tc.precision)
        self.autocast = (torch.autocast(self.device.type, dtype=dtype) if dtype
                         else contextlib.nullcontext())
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range
        self.scaler = torch.amp.GradScaler("cuda") if tc.precision == "fp16" else None
        self.batches_per_epoch = len(self._batches(None))
        self.scheduler = make_scheduler(tc.lr_schedule, self.optimizer,
                                        tc.epochs * self.batches_per_epoch)
        # where the current pass stands, for an exact resume from the middle of it
        self.position: dict[str, Any] | None = None

    def train_epoch(self, on_batch: Callable[[int, int, torch.Tensor], None] | None = None
                    ) -> EpochStats:
        """One pass over the training data, or the rest of an interrupted one.
        `on_batch(done, total, loss)` after each batch, with the batch's detached loss."""
        tc = self.cfg.train
        started = time.perf_counter()
        self.model.train()
        resumed = self.position
        if resumed:
            self.generator.set_state(resumed["generator"])
            if self.augment is not None:
                self.augment.generator.set_state(resumed["augment"])
        position = {"generator": self.generator.get_state(), "step": 0,
                    "loss_sum": 0.0, "norm_sum": 0.0,
                    "augment": self.augment.generator.get_state() if self.augment else None}
        if self.augment is not None:  # this epoch's rewritten utterances
            self.data = encode_split(self.augment.draw(), self.vocabs,
                                     labels=True).to(self.device)
        batches = self._batches(self.generator)
        loss_sum = torch.tensor(resumed["loss_sum"] if resumed else 0.0, device=self.device)
        norm_sum = torch.tensor(resumed["norm_sum"] if resumed else 0.0, device=self.device)
        first = resumed["step"] if resumed else 0
        max_norm = tc.clip if tc.clip > 0 else math.inf
        params = [p for p in self.model.parameters() if p.requires_grad]
        for step in range(first + 1, len(batches) + 1):
            batch = self.word_dropout(make_batch(self.data, batches[step - 1]))
            with self.autocast:
                loss = self.forward(batch)
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is None:
                loss.backward()
                norm_sum += clip_gradients(params, max_norm)
                self.optimizer.step()
            else:
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(self.optimizer)
                norm_sum += clip_gradients(params, max_norm)
                self.scaler.step(self.optimizer)  # skipped when gradients overflowed
                self.scaler.update()
            if self.average is not None:
                self.average.update()
            if isinstance(self.scheduler, torch.optim.lr_scheduler.LambdaLR):
                self.scheduler.step()
            loss = loss.detach()
            loss_sum += loss
            if on_batch:
                on_batch(step, len(batches), loss)
            if step < len(batches) and self.dist.any(self.should_stop()):
                self.position = {**position, "step": step, "loss_sum": float(loss_sum),
                                 "norm_sum": float(norm_sum)}
                raise StopRequested
        self.position = None
        loss = self.dist.mean(float(loss_sum) / len(batches))  # every rank's share
        return EpochStats(loss, float(norm_sum) / len(batches),
                          len(batches), int(self.data.lengths.sum()),
                          time.perf_counter() - started)

    def _batches(self, generator: torch.Generator | None) -> list[torch.Tensor]:
        tc = self.cfg.train
        return self.dist.share(batches_for(self.data, tc.batching, tc.batch_size, generator))

    def end_epoch(self, dev_f1: float) -> None:
        """Epoch-level schedule step (plateau: halve the rate when dev F1 stalls)."""
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(dev_f1)

    @contextlib.contextmanager
    def evaluated_model(self) -> Iterator[torch.nn.Module]:
        """The model with the weights that are scored and saved as best.pt: the running
        average with train.ema, else the trained weights."""
        if self.average is None:
            yield self.model
        else:
            with self.average.swapped_in() as model:
                yield model

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict[str, Any]:
        """Everything besides the weights that a bit-exact continuation needs (a
        collective call when distributed: the random states of every rank)."""
        rng = torch.get_rng_state()
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "torch_rng": self.dist.gather(rng),  # one per rank
            "cuda_rng": self.dist.gather(cuda) if cuda is not None else None,
            "generator": self.generator.get_state(),
            "position": self.position,
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "average": self.average.state_dict() if self.average else None,
            "augment": self.augment.generator.get_state() if self.augment else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ranks = len(state["torch_rng"])
        if ranks != self.dist.world_size:
            raise RunDirError(f"The run was trained with {ranks} process(es), not "
                              f"{self.dist.world_size}",
                              f"resume it with --nproc {ranks} (or as many torchrun workers)")
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"][self.dist.rank])
        if state["cuda_rng"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"][self.dist.rank], self.device)
        self.generator.set_state(state["generator"])
        self.position = state["position"]
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.average is not None and state.get("average"):
            self.average.load_state_dict(state["average"])
        if self.augment is not None and state.get("augment") is not None:
            self.augment.generator.set_state(state["augment"])


def make_optimizer(cfg: Config, model: torch.nn.Module) -> torch.optim.Optimizer:
    tc = cfg.train
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
    kwargs = {"lr": tc.lr, "weight_decay": tc.weight_decay}
    try:  # one fused kernel for all parameters: ~5x faster steps than the default
        return kinds[tc.optimizer](model.parameters(), fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):  # older torch: no fused CPU kernels
        return kinds[tc.optimizer](model.parameters(), **kwargs)


def make_scheduler(kind: str, optimizer: torch.optim.Optimizer, steps: int):
    """linear/cosine: decay per batch to 0 at the last step; plateau: per epoch on dev F1."""
    if kind == "linear":  # (steps is an estimate when train.augment varies the batches)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: max(0.0, 1 - i / steps))
    if kind == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda i: 0.5 * (1 + math.cos(math.pi * min(i / steps, 1.0))))
    if kind == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5,
                                                          patience=0)
    return None


def clip_gradients(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """The gradients' total L2 norm; rescales them to `max_norm` when above it, as
    torch.nn.utils.clip_grad_norm_ does. On the CPU it skips the rescaling multiply when
    the norm is below the limit (a multiply by exactly 1), which saves a pass over every
    gradient; on an accelerator that check would cost a device sync."""
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    if math.isfinite(max_norm) and (norm.device.type != "cpu" or norm > max_norm):
        scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        for g in grads:
            g.mul_(scale)
    return norm


class WordDropout:
    """Replaces words seen once in training by <unk> with probability p, so that the
    model learns an <unk> embedding for the unseen words of dev, test and users."""

    def __init__(self, examples, vocabs: Vocabs, p: float, device: torch.device) -> None:
        self.p = p
        counts = Counter(token for example in examples for token in example.tokens)
        self.singleton = torch.zeros(len(vocabs.words), dtype=torch.bool)  # (V,)
        self.singleton[vocabs.words.encode(w for w, n in counts.items() if n == 1)] = True
        self.singleton = self.singleton.to(device)
        self.unk = vocabs.words.index(UNK)

    def __call__(self, batch: Batch) -> Batch:
        if self.p == 0:
            return batch
        drop = self.singleton[batch.words] & (torch.rand(batch.words.shape,
                                                         device=batch.words.device) < self.p)
        batch.words = batch.words.masked_fill(drop, self.unk)
        return batch
