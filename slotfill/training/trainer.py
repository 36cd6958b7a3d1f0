"""One training pass at a time: model, optimiser, schedule and batches, with the state
needed to continue exactly where a pass stopped (`state_dict` / `load_state_dict`)."""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from slotfill.config import Config
from slotfill.data.batching import Batch, EncodedSplit, batches_for, encode_split, make_batch
from slotfill.data.compact import tag_sequences
from slotfill.data.vocab import UNK, Vocabs
from slotfill.errors import ConfigError, RunDirError
from slotfill.models import build_model
from slotfill.runtime import configure_threads, resolve_device, seed_everything
from slotfill.training import graphs
from slotfill.training.augment import SlotSubstitution
from slotfill.training.averaging import WeightAverage
from slotfill.training.distributed import Dist
from slotfill.training.optimizers import learning_rate, make_optimizer, make_scheduler
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
        self.threads = configure_threads(tc.threads)  # follows the free cores if 0
        self.cfg, self.vocabs, self.should_stop, self.dist = cfg, prepared.vocabs, \
            should_stop, dist
        self.device = dist.device(resolve_device(tc.device))
        examples = prepared.corpus["train"]
        self.soft_targets = prepared.distillation  # distill.teachers' targets, or None
        self.data = self._encode(examples)
        self.augment = (SlotSubstitution(examples, tc.augment, self.vocabs.tags,
                                         self.vocabs.gazetteers, tc.seed)
                        if tc.augment else None)
        self.model = build_model(cfg.model, self.vocabs, tag_sequences(examples))
        prepared.initialise(self.model)  # train.init's weights, pretrained vectors
        self.model.to(self.device)
        self.model.set_label_smoothing(tc.label_smoothing)
        self.average = WeightAverage(self.model, tc.ema) if tc.ema else None
        self.forward = self.model  # the module whose call computes the training loss
        if self.soft_targets is not None:
            if dist.enabled:
                raise ConfigError("distill.teachers: distillation runs in one process",
                                  "train the student without --nproc")
            from slotfill.training.distill import DistillationLoss

            self.forward = DistillationLoss(self.model, cfg.distill.temperature,
                                            cfg.distill.alpha)
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel
            self.forward = DistributedDataParallel(self.model)  # averages gradients
            torch.manual_seed(tc.seed + dist.rank)  # own dropout masks on every rank
        # on a GPU, steps replay from CUDA graphs where the run allows (graphs.py)
        self.graph_unsupported = graphs.unsupported(cfg, self.device, dist.enabled)
        self.optimizer = make_optimizer(cfg, self.model,
                                        capturable=self.graph_unsupported is None)
        self.word_dropout = WordDropout(examples, self.vocabs, cfg.model.word_dropout,
                                        self.device)
        self.generator = torch.Generator().manual_seed(tc.seed)  # batch order, all ranks
        if tc.precision != "fp32" and self.device.type != "cuda":
            raise ConfigError(f"train.precision={tc.precision} needs a CUDA device",
                              "use train.precision=fp32 on the CPU (oneDNN's recurrent "
                              "kernels have no reduced-precision path on most CPUs)")
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(tc.precision)
        self.autocast = (torch.autocast(self.device.type, dtype=dtype, cache_enabled=False)
                         if dtype else contextlib.nullcontext())
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range
        self.scaler = torch.amp.GradScaler("cuda") if tc.precision == "fp16" else None
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.max_norm = tc.clip if tc.clip > 0 else math.inf
        self.batches_per_epoch = len(self._batches(None))
        self.scheduler = make_scheduler(tc.lr_schedule, self.optimizer,
                                        tc.epochs * self.batches_per_epoch, tc.warmup)
        self.graphs = (graphs.GraphedSteps(self.data, self._step, self.model, self.optimizer)
                       if self.graph_unsupported is None else None)
        # where the current pass stands, for an exact resume from the middle of it
        self.position: dict[str, Any] | None = None

    def train_epoch(self, on_batch: Callable[[int, int, torch.Tensor], None] | None = None
                    ) -> EpochStats:
        """One pass over the training data, or the rest of an interrupted one.
        `on_batch(done, total, loss)` after each batch, with the batch's detached loss.
        Nothing in a step waits for the device: losses and norms add up on it."""
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
            self.data = self._encode(self.augment.draw())
        batches = self._batches(self.generator)
        if self.graphs is not None:  # the epoch's batch indices, moved in one copy
            on_device = torch.cat(batches).to(self.device).split([len(b) for b in batches])
        loss_sum = torch.tensor(resumed["loss_sum"] if resumed else 0.0, device=self.device)
        norm_sum = torch.tensor(resumed["norm_sum"] if resumed else 0.0, device=self.device)
        first = resumed["step"] if resumed else 0
        for step in range(first + 1, len(batches) + 1):
            index = batches[step - 1]
            if self.graphs is not None:
                try:
                    loss, norm = self.graphs.step(on_device[step - 1],
                                                  int(self.data.lengths[index[0]]))
                except graphs.RecordingFailed as exc:
                    warnings.warn(f"CUDA graphs are off for this run: {exc}", stacklevel=2)
                    self.graphs, self.graph_unsupported = None, str(exc)
            if self.graphs is None:
                self.optimizer.zero_grad(set_to_none=True)
                loss, norm = self._step(make_batch(self.data, index))
            if self.average is not None:
                self.average.update()
            if isinstance(self.scheduler, torch.optim.lr_scheduler.LambdaLR):
                self.scheduler.step()
            loss_sum += loss
            norm_sum += norm
            if on_batch:
                on_batch(step, len(batches), loss)
            self.threads.update()  # fewer threads while other work needs the cores
            if step < len(batches) and self.dist.any(self.should_stop()):
                self.position = {**position, "step": step, "loss_sum": float(loss_sum),
                                 "norm_sum": float(norm_sum)}
                raise StopRequested
        self.position = None
        loss = self.dist.mean(float(loss_sum) / len(batches))  # every rank's share
        return EpochStats(loss, float(norm_sum) / len(batches),
                          len(batches), int(self.data.lengths.sum()),
                          time.perf_counter() - started)

    def _encode(self, examples) -> EncodedSplit:
        """This epoch's training examples as tensors, with the teachers' targets."""
        split = encode_split(examples, self.vocabs, labels=True, compact=True).to(self.device)
        return split if self.soft_targets is None else self.soft_targets.attach(split,
                                                                                examples)

    def _step(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step from zeroed gradients: (loss, gradient norm before
        clipping), detached, on the device. Recorded as it is into CUDA graphs."""
        batch = self.word_dropout(batch)
        with self.autocast:
            loss = self.forward(batch)
        if self.scaler is None:
            loss.backward()
            norm = clip_gradients(self.params, self.max_norm)
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            norm = clip_gradients(self.params, self.max_norm)
            self.scaler.step(self.optimizer)  # skipped when gradients overflowed
            self.scaler.update()
        return loss.detach(), norm

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
        return float(self.optimizer.param_groups[0]["lr"])  # a device tensor with graphs

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
        # the saved optimiser may come from the other path (graphs or not): settle its
        # learning rate's type and its capturable flag for this one
        capturable = self.graphs is not None
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(float(group["lr"]), self.device, capturable)
            if "capturable" in group:
                group["capturable"] = capturable
        if self.scheduler is not None and hasattr(self.scheduler, "base_lrs"):
            self.scheduler.base_lrs = [float(lr) for lr in self.scheduler.base_lrs]
        if self.average is not None and state.get("average"):
            self.average.load_state_dict(state["average"])
        if self.augment is not None and state.get("augment") is not None:
            self.augment.generator.set_state(state["augment"])


def clip_gradients(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """The gradients' total L2 norm; rescales them to `max_norm` when above it, as
    torch.nn.utils.clip_grad_norm_ does. On the CPU it skips the rescaling multiply when
    the norm is below the limit (a multiply by exactly 1), which saves a pass over every
    gradient; on an accelerator that check would cost a device sync."""
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))  # one kernel
    if math.isfinite(max_norm) and (norm.device.type != "cpu" or norm > max_norm):
        torch._foreach_mul_(grads, torch.clamp(max_norm / (norm + 1e-6), max=1.0))
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
