"""`slotfill ensemble`: trained models combined into one, in a run directory of its own.

The directory holds what `--model DIR` needs (best.pt, the ensemble), the first member's
config.yaml (its corpus is the ensemble's), status.json, and metrics.json / metrics.md
with the ensemble's dev and test scores and its members, so that eval, predict, export,
serve, `runs` and `compare` treat it like any run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from slotfill.analysis.evaluate import SplitScorer
from slotfill.data.corpus import read_corpus
from slotfill.errors import CheckpointError
from slotfill.models.checkpoint import load_checkpoint, save_checkpoint
from slotfill.models.ensemble import Ensemble, check_members
from slotfill.training.rundir import RunDir, check_output, resolve_model


@dataclass
class EnsembleResult:
    run_dir: Path
    members: list[Path]  # the members' checkpoints
    dev: dict
    test: dict | None


def build_ensemble(models: Sequence[str | Path], output: Path, force: bool = False,
                   device: str = "cpu", batch_size: int = 256) -> EnsembleResult:
    """Combine the checkpoints (or run directories) `models` into `output`/best.pt and
    score the ensemble on its corpus's dev and test splits."""
    check_output(output, force)
    paths = [resolve_model(m) for m in models]
    checkpoints = [load_checkpoint(p) for p in paths]
    for ckpt in checkpoints:
        ckpt.require_float("slotfill ensemble", "an ensemble is built from float members "
                           "(quantize the ensemble's run afterwards)")
        if ckpt.members:
            raise CheckpointError(f"{ckpt.path} is an ensemble already",
                                  "pass the run directories of its members instead")
    configs = [c.config for c in checkpoints]
    vocabs = check_members([str(p) for p in paths], configs, [c.vocabs for c in checkpoints])
    model = Ensemble(configs, vocabs)
    for member, ckpt in zip(model.members, checkpoints):
        member.load_state_dict(ckpt.model_state)
    model.to(device).eval()

    data = configs[0].data
    corpus = read_corpus(data.path, data.format, splits=("valid", "test"), optional=("test",))
    dev, test = (SplitScorer(corpus[s], vocabs, device, batch_size).score(model)
                 if s in corpus.splits else None for s in ("valid", "test"))
    run = RunDir.create("ensemble", output, force)
    members = [str(p) for p in paths]
    save_checkpoint(run.best, model, configs[0], vocabs, {"members": members,
                                                          "dev_f1": dev["f1"]})
    run.write_config(configs[0].to_yaml())
    run.write_metrics(None, 0, dev, test, members=members)
    run.write_status("finished", f"ensemble of {len(members)} models")
    return EnsembleResult(run.path, paths, dev, test)
