"""Shared fixtures: the tiny corpus, the real ATIS corpus (when present), a trained model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "assets" / "tiny"
CONFIGS = ROOT / "configs"
# The real ATIS split lives outside the repository; tests that need it skip without it.
ATIS = Path(os.environ.get("SLOTFILL_ATIS_DIR", ROOT.parent / "shared" / "datasets" / "atis"))


def tiny_overrides(epochs: int = 1) -> list[str]:
    """Overrides that make any shipped config train in seconds on the tiny corpus."""
    return [f"data.path={TINY}", f"train.epochs={epochs}", "model.hidden_size=16",
            "model.embedding_dim=16", "train.threads=1", "train.device=cpu",
            "train.report=false"]  # tests of the report turn it on


def longer_tiny_corpus(root: Path, times: int = 10) -> Path:
    """The tiny corpus with its training split repeated, so that an epoch lasts long
    enough for a signal to land in the middle of one."""
    for split in ("train", "valid", "test"):
        (root / split).mkdir()
        for name in ("seq.in", "seq.out", "label"):
            text = (TINY / split / name).read_text()
            (root / split / name).write_text(text * (times if split == "train" else 1))
    return root


@pytest.fixture
def atis_dir() -> Path:
    if not (ATIS / "train" / "seq.in").is_file():
        pytest.skip(f"real ATIS corpus not found at {ATIS} (set SLOTFILL_ATIS_DIR)")
    return ATIS


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A run directory of a small BiLSTM trained for 3 epochs on the tiny corpus."""
    from slotfill.config import load_config
    from slotfill.training.run import train

    cfg = load_config(CONFIGS / "bilstm.yaml", tiny_overrides(epochs=3))
    run_dir = tmp_path_factory.mktemp("run")
    train(cfg, run_dir)
    return run_dir


@pytest.fixture(scope="session")
def trained_intent_run(tmp_path_factory) -> Path:
    """A run directory of the joint config (BiLSTM, char CNN, CRF, intents), trained on
    the tiny corpus until it finds slots (6 epochs at a high rate, no weight averaging:
    too few steps for it), with its report."""
    from slotfill.config import load_config
    from slotfill.training.run import train

    cfg = load_config(CONFIGS / "joint.yaml", tiny_overrides(epochs=6) + [
        "train.report=true", "train.ema=0", "train.lr=0.01"])
    run_dir = tmp_path_factory.mktemp("joint-run")
    train(cfg, run_dir)
    return run_dir


def write_tiny_bert(directory: Path, seed: int = 0) -> Path:
    """A randomly initialised BERT small enough to train in seconds (2 layers, hidden
    32), saved as a Hugging Face model directory: config.json, WordPiece tokenizer files
    over the tiny corpus's words and single letters, model.safetensors. Skips the test
    when `transformers` is not installed."""
    transformers = pytest.importorskip("transformers")
    import torch

    words = sorted({w for split in ("train", "valid", "test")
                    for line in (TINY / split / "seq.in").read_text().split("\n")
                    for w in line.split()})
    letters = "abcdefghijklmnopqrstuvwxyz0123456789'.-"
    vocab = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(letters)
             + ["##" + c for c in letters] + [w for w in words if w not in letters])
    directory.mkdir(parents=True, exist_ok=True)
    transformers.BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(
        directory)
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32,
                                     num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def transformer_overrides(bert: Path, epochs: int = 2) -> list[str]:
    """tiny_overrides for a tagger that reads words with the tiny BERT."""
    return tiny_overrides(epochs) + [f"model.transformer={bert}", "model.type=none",
                                     "train.lr=0.01", "train.encoder_lr=0.001",
                                     "train.warmup=0.1"]
