"""The GPU rows of benchmarks/speed.py (`--device cuda`): epochs and tagging on the card,
beside the same figures on this machine's CPU.

Epochs: the BiLSTM of speed.py (softmax and CRF heads) on ATIS, after one warm-up epoch
(which records the CUDA graphs), median of `repeats`; with CUDA graphs and without
(eager steps), in fp32, bf16 and fp16. Tagging: the test split in batches of 256,
tokens -> tags (Predictor.tag), sentences/s.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from slotfill.models.checkpoint import save_checkpoint
from slotfill.serving.predict import Predictor
from slotfill.training.trainer import Trainer

EVAL_BATCH = 256


def require_cuda() -> str:
    """The card's name, or exit with what is missing."""
    if not torch.cuda.is_available():
        sys.exit(f"error: --device cuda needs a CUDA device, and this machine has none that "
                 f"torch {torch.__version__} can use (CUDA build: "
                 f"{torch.version.cuda or 'none, a CPU-only build'}); run without "
                 "--device for the CPU benchmark")
    return torch.cuda.get_device_name()


def epoch_seconds(trainer: Trainer, repeats: int) -> float:
    trainer.train_epoch()  # warm-up: records the graphs, wakes the kernels
    return statistics.median(trainer.train_epoch().seconds for _ in range(repeats))


def tagging_rate(model: torch.nn.Module, cfg, vocabs, texts: list[tuple[str, ...]],
                 device: str, repeats: int) -> float:
    """Sentences/s tagging `texts` (tokens) in batches of 256 on `device`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        save_checkpoint(path, model, cfg, vocabs, {"epoch": 0})
        predictor = Predictor(path, device=device, batch_size=EVAL_BATCH)
    chunks = [texts[i:i + EVAL_BATCH] for i in range(0, len(texts), EVAL_BATCH)]
    for chunk in chunks:  # warm-up
        predictor.tag(chunk)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for chunk in chunks:
            predictor.tag(chunk)  # returns tag strings: the results reached the host
        rates.append(len(texts) / (time.perf_counter() - start))
    return statistics.median(rates)


def gpu_rows(make_trainer, test_tokens, repeats: int, cpu: dict[str, float]):
    """(figure, GPU value, CPU value, target, met) rows. `make_trainer(*overrides)` builds
    a Trainer of speed.py's model; `cpu` holds the CPU figures of this machine."""
    rows = []

    def epoch(*overrides: str, graphs: bool = True) -> tuple[float, Trainer]:
        trainer = make_trainer("train.device=cuda", *overrides)
        if not graphs:
            trainer.graphs = None
        return epoch_seconds(trainer, repeats), trainer

    softmax, trainer = epoch()
    eager, _ = epoch(graphs=False)
    crf, _ = epoch("model.head=crf")
    crf_eager, _ = epoch("model.head=crf", graphs=False)
    bf16, _ = epoch("train.precision=bf16")
    fp16, _ = epoch("train.precision=fp16")  # eager: the loss scaler syncs every step
    used = "CUDA graphs" if trainer.graphs is not None else \
        f"eager ({trainer.graph_unsupported})"
    rows += [
        (f"BiLSTM epoch on ATIS, fp32, {used} (s)", f"{softmax:.3f}",
         f"{cpu['epoch']:.2f}", "<= 0.25 s", softmax <= 0.25),
        ("BiLSTM epoch, fp32, eager steps (s)", f"{eager:.3f}", "", "", None),
        ("CUDA graphs speed-up (eager epoch / graphed epoch)", f"{eager / softmax:.2f}x",
         "", "", None),
        ("BiLSTM-CRF epoch, fp32 (s)", f"{crf:.3f}", f"{cpu['crf_epoch']:.2f}", "", None),
        ("BiLSTM-CRF epoch, fp32, eager steps (s)", f"{crf_eager:.3f}", "", "", None),
        ("CRF epoch / softmax epoch", f"{crf / softmax:.2f}x",
         f"{cpu['crf_epoch'] / cpu['epoch']:.2f}x", "<= 1.3x", crf / softmax <= 1.3),
        ("BiLSTM epoch, bf16 autocast (s)", f"{bf16:.3f}", "", "", None),
        ("bf16 epoch / fp32 epoch", f"{bf16 / softmax:.2f}x", "", "", None),
        ("BiLSTM epoch, fp16 autocast + loss scaling, eager (s)", f"{fp16:.3f}", "", "",
         None),
    ]
    model, cfg, vocabs = trainer.model, trainer.cfg, trainer.vocabs
    rate = tagging_rate(model, cfg, vocabs, test_tokens, "cuda", max(3, repeats))
    rows.append(("tagging, tokens -> tags, batches of 256 (sentences/s)", f"{rate:,.0f}",
                 f"{cpu['tagging']:,.0f}", "", None))
    return rows
