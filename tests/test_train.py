from __future__ import annotations

import math

import torch

from slotfill.training.trainer import clip_gradients


def test_clip_gradients_matches_torch():
    for scale in (0.01, 100.0):
        torch.manual_seed(0)
        ours = [torch.nn.Parameter(torch.randn(5, 3)) for _ in range(3)]
        theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
        for a, b in zip(ours, theirs):
            a.grad = torch.randn_like(a) * scale
            b.grad = a.grad.clone()
        norm = clip_gradients(ours, 1.0)
        expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
        torch.testing.assert_close(norm, expected)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a.grad, b.grad)
    total = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in ours]))
    assert math.isclose(float(clip_gradients(ours, math.inf)), float(total), rel_tol=1e-5)


def test_mixed_precision_needs_a_gpu():
    import pytest
    from conftest import CONFIGS, TINY

    from slotfill.config import load_config
    from slotfill.errors import ConfigError
    from slotfill.training.prepare import prepare
    from slotfill.training.trainer import Trainer
    cfg = load_config(CONFIGS / "lstm.yaml", [f"data.path={TINY}", "train.device=cpu",
                                              "train.precision=bf16"])
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        Trainer(cfg, prepare(cfg))
