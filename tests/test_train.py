from __future__ import annotations

import math

import torch

from slotfill.trainer import clip_gradients


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
    assert math.isclose(float(clip_gradients(ours, math.inf)),
                        float(torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in ours]))),
                        rel_tol=1e-5)
