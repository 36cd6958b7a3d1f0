"""The GPU path: which runs replay their steps from CUDA graphs, and that the replaying
machinery trains exactly like eager steps. There is no GPU here, so the recording is
stood in for by an eager one (EagerGraph); real CUDA graphs run in
`benchmarks/speed.py --device cuda`."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import CONFIGS, tiny_overrides

from slotfill.config import load_config
from slotfill.training import graphs
from slotfill.training.prepare import prepare
from slotfill.training.trainer import Trainer, clip_gradients

CUDA = torch.device("cuda")


class EagerGraph:
    """A CPU stand-in for a CUDA graph: recording keeps the step and runs nothing;
    replaying runs it and writes its results into the static outputs."""

    def record(self, run):
        self.run = run
        self.loss, self.norm = torch.zeros(()), torch.zeros(())
        return self.loss, self.norm

    def replay(self):
        loss, norm = self.run()
        self.loss.copy_(loss)
        self.norm.copy_(norm)

    @staticmethod
    def warm_up(run, times):
        for _ in range(times):
            run()


def config(*overrides):
    return load_config(CONFIGS / "bilstm.yaml", [*tiny_overrides(), *overrides])


def test_which_runs_can_use_graphs():
    assert graphs.unsupported(config(), torch.device("cpu"), False) == "not on a CUDA device"
    assert graphs.unsupported(config(), CUDA, False) is None
    assert graphs.unsupported(config("model.head=crf", "model.intent=true",
                                     "train.precision=bf16"), CUDA, False) is None
    assert "DistributedDataParallel" in graphs.unsupported(config(), CUDA, True)
    assert "random" in graphs.unsupported(config("train.batching=random"), CUDA, False)
    assert "character" in graphs.unsupported(config("model.char=cnn"), CUDA, False)
    assert "fp16" in graphs.unsupported(config("train.precision=fp16"), CUDA, False)
    assert "augment" in graphs.unsupported(
        config("data.gazetteers={city: city_name}", "train.augment=0.2"), CUDA, False)


def test_on_the_cpu_steps_run_eagerly():
    cfg = config()
    trainer = Trainer(cfg, prepare(cfg))
    assert trainer.graphs is None and trainer.graph_unsupported == "not on a CUDA device"
    assert isinstance(trainer.optimizer.param_groups[0]["lr"], float)


@pytest.mark.parametrize("overrides", [
    ("model.word_dropout=0.3", "model.output_dropout=0.3", "model.embedding_dropout=0.2",
     "train.clip=0.5"),
    ("model.head=crf", "model.intent=true", "train.lr_schedule=linear", "train.epochs=2"),
    ("data.gazetteers={city: city_name}", "train.ema=0.9", "train.label_smoothing=0.1"),
], ids=["dropout-clipping", "crf-intent-schedule", "gazetteers-ema"])
def test_replayed_steps_train_exactly_like_eager_ones(overrides):
    """Warm-up steps leave no trace (weights, Adam's state, random generators), each
    shape is recorded once, and every replay is the step it stands for."""
    cfg = config(*overrides)
    prepared = prepare(cfg)
    eager, replayed = Trainer(cfg, prepared), Trainer(cfg, prepared)
    replayed.graphs = graphs.GraphedSteps(replayed.data, replayed._step, replayed.model,
                                          replayed.optimizer, graph_type=EagerGraph)
    for _ in range(cfg.train.epochs):  # both draw dropout masks from torch's generator
        start = torch.get_rng_state()
        a = eager.train_epoch()
        after = torch.get_rng_state()
        torch.set_rng_state(start)
        b = replayed.train_epoch()
        assert torch.equal(torch.get_rng_state(), after)  # the same random numbers drawn
        assert (a.loss, a.grad_norm, a.batches) == (b.loss, b.grad_norm, b.batches)
    for (name, p), q in zip(eager.model.named_parameters(), replayed.model.parameters()):
        assert torch.equal(p, q), name
    shapes = {(len(i), int(replayed.data.lengths[i[0]]))
              for i in replayed._batches(torch.Generator().manual_seed(0))}
    assert set(replayed.graphs.graphs) == shapes  # one recording per batch shape
    assert eager.lr == replayed.lr


def test_clipping_never_reads_the_norm_back_off_the_cpu():
    """On a device, clipping is unconditional arithmetic (no `if norm > max`)."""
    grads = [torch.full((3,), 4.0), torch.full((4,), 3.0)]
    params = [torch.zeros(3, requires_grad=True), torch.zeros(4, requires_grad=True)]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    norm = clip_gradients(params, 1.0)
    total = torch.linalg.vector_norm(torch.cat(grads))
    assert norm == pytest.approx(float(total))
    assert float(torch.linalg.vector_norm(torch.cat([p.grad for p in params]))) == \
        pytest.approx(1.0, rel=1e-5)
    for p, g in zip(params, grads):
        p.grad = g.clone()
    clip_gradients(params, float(total) + 1)  # below the limit: untouched
    assert all(torch.equal(p.grad, g) for p, g in zip(params, grads))


def test_capturable_optimiser_keeps_its_rate_in_a_tensor_the_schedule_fills():
    from slotfill.training.optimizers import make_optimizer, make_scheduler

    cfg = dataclasses.replace(config(), train=dataclasses.replace(config().train,
                                                                  optimizer="sgd"))
    model = torch.nn.Linear(2, 2)
    optimizer = make_optimizer(cfg, model, capturable=True)
    rate = optimizer.param_groups[0]["lr"]
    assert isinstance(rate, torch.Tensor)
    scheduler = make_scheduler("linear", optimizer, steps=4)
    assert all(isinstance(lr, float) for lr in scheduler.base_lrs)
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] is rate  # the same tensor, filled in place
    assert float(rate) == pytest.approx(cfg.train.lr * 0.75)


class UnrecordableGraph(EagerGraph):
    def record(self, run):
        raise RuntimeError("operation not permitted when stream is capturing\nmore")


def test_a_step_that_cannot_be_recorded_falls_back_to_eager_steps():
    cfg = config("model.word_dropout=0.3")
    prepared = prepare(cfg)
    eager, fallback = Trainer(cfg, prepared), Trainer(cfg, prepared)
    fallback.graphs = graphs.GraphedSteps(fallback.data, fallback._step, fallback.model,
                                          fallback.optimizer, graph_type=UnrecordableGraph)
    start = torch.get_rng_state()
    a = eager.train_epoch()
    torch.set_rng_state(start)
    with pytest.warns(UserWarning, match="CUDA graphs are off for this run: operation not "
                                         "permitted when stream is capturing$"):
        b = fallback.train_epoch()
    assert fallback.graphs is None and "capturing" in fallback.graph_unsupported
    assert (a.loss, a.grad_norm) == (b.loss, b.grad_norm)  # the failed try left no trace
    assert all(torch.equal(p, q) for p, q in zip(eager.model.parameters(),
                                                 fallback.model.parameters()))
