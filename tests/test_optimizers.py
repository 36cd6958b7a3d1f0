"""The optimisers slotfill builds: torch's own updates, without importing torch's compiler."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import CONFIGS, tiny_overrides

from slotfill.config import load_config
from slotfill.training.optimizers import make_optimizer, make_scheduler


@pytest.mark.parametrize("kind", ["adam", "adamw", "sgd"])
def test_steps_match_torchs_own_optimiser(kind):
    cfg = load_config(CONFIGS / "bilstm.yaml", [*tiny_overrides(), f"train.optimizer={kind}",
                                                 "train.weight_decay=0.01"])
    torch.manual_seed(0)
    ours, theirs = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    theirs.load_state_dict(ours.state_dict())
    mine = make_optimizer(cfg, ours)
    reference = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
                 "sgd": torch.optim.SGD}[kind](theirs.parameters(), lr=cfg.train.lr,
                                               weight_decay=0.01, fused=True)
    scheduler = make_scheduler("linear", mine, steps=5)
    reference_scheduler = make_scheduler("linear", reference, steps=5)
    x = torch.randn(8, 4)
    for _ in range(5):
        for model, optimizer in ((ours, mine), (theirs, reference)):
            optimizer.zero_grad()
            model(x).pow(2).sum().backward()
            optimizer.step()
        scheduler.step()
        reference_scheduler.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)
    restored = make_optimizer(cfg, ours)
    restored.load_state_dict(mine.state_dict())
    assert restored.state_dict()["state"].keys() == mine.state_dict()["state"].keys()


def test_training_never_imports_torchs_compiler(tmp_path):
    code = ("import sys\n"
            "from slotfill.cli import main\n"
            f"sys.argv = ['slotfill', 'train', 'bilstm', *{tiny_overrides()!r}, "
            f"'train.lr_schedule=linear', '--output', {str(tmp_path / 'run')!r}]\n"
            "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "print('torch._dynamo' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip().splitlines()[-1] == "False"
