from __future__ import annotations

import pytest
import torch

from slotfill.errors import CheckpointError
from slotfill.models.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint


def test_round_trip_is_self_contained(trained_run):
    ckpt = load_checkpoint(trained_run / "best.pt")
    assert ckpt.versions["torch"] == str(torch.__version__)
    assert ckpt.meta["epoch"] >= 1 and 0 <= ckpt.meta["dev_f1"] <= 1
    model = ckpt.build_model()
    copy = trained_run / "copy.pt"
    save_checkpoint(copy, model, ckpt.config, ckpt.vocabs, ckpt.meta)
    again = load_checkpoint(copy)
    assert again.config == ckpt.config and again.vocabs.tags == ckpt.vocabs.tags
    for key, value in ckpt.model_state.items():
        assert torch.equal(value, again.model_state[key])
    assert not list(trained_run.glob(".*.tmp"))  # the temporary file was renamed away
    copy.unlink()


def test_missing_truncated_and_foreign_files(trained_run, tmp_path):
    with pytest.raises(CheckpointError, match="Checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")
    data = (trained_run / "best.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(tmp_path / "cut.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a slotfill checkpoint"):
        load_checkpoint(tmp_path / "text.pt")
    corrupted = bytearray(data)
    # zeros over the zip header of the first weight (zeros inside a weight are still a
    # readable file; where the middle of the file falls depends on the config's length)
    middle = data.index(b"archive/data/0") - 30
    corrupted[middle: middle + 64] = bytes(64)
    (tmp_path / "flipped.pt").write_bytes(bytes(corrupted))
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(tmp_path / "flipped.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a slotfill checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_newer_format_is_refused(trained_run, tmp_path):
    payload = torch.load(trained_run / "best.pt", weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="upgrade slotfill"):
        load_checkpoint(tmp_path / "future.pt")


class _Payload:
    """Unpickling this would run os.system: a crafted checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "slotfill-checkpoint", "x": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="Refused to load"):
        load_checkpoint(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # what an unsafe loader would have done
    assert marker.exists()


def test_a_seq2seq_checkpoint_from_before_the_tagger_refactor_loads(tmp_path):
    """Before 0.2 the decoder's weights sat at the top of the state dict (no `head.`),
    and checkpoints had no checksum: such a file still loads and tags the same."""
    from conftest import CONFIGS, tiny_overrides

    from slotfill.config import load_config
    from slotfill.models import build_model
    from slotfill.training.prepare import prepare

    cfg = load_config(CONFIGS / "seq2seq.yaml", tiny_overrides())
    vocabs = prepare(cfg).vocabs
    model = build_model(cfg.model, vocabs).eval()
    save_checkpoint(tmp_path / "new.pt", model, cfg, vocabs, {"epoch": 1, "dev_f1": 0.0})
    payload = torch.load(tmp_path / "new.pt", weights_only=True)
    payload["model"] = {k.removeprefix("head."): v for k, v in payload["model"].items()}
    payload.pop("weights_checksum")
    torch.save(payload, tmp_path / "old.pt")
    old = load_checkpoint(tmp_path / "old.pt").build_model()
    for key, value in model.state_dict().items():
        assert torch.equal(old.state_dict()[key], value), key
