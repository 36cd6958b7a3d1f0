"""The plain PyTorch loop slotfill is measured against, and the same recipe as a slotfill config.

    python benchmarks/reference.py [--atis DIR] [--epochs 3] [--seed 1]

Run as a script, it is the end-to-end reference of benchmarks/speed.py: what many people
write first, in a fresh process with torch's default threads. It reads ATIS's
seq.in/seq.out with plain Python, trains a stock nn.LSTM over pack_padded_sequence on
random batches of 32 built from Python lists each step, scores dev after every epoch,
keeps the best weights and scores test with them; prints one JSON line (dev and test F1,
seconds). Imported, it gives speed.py and neighbours.py the recipe both contenders train.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

ROOT = Path(__file__).resolve().parents[1]
EMB, HIDDEN, BATCH, EVAL_BATCH = 100, 200, 32, 256
DEFAULT_ATIS = Path(os.environ.get("SLOTFILL_ATIS_DIR", ROOT.parent / "shared/datasets/atis"))


class ReferenceTagger(nn.Module):
    def __init__(self, num_words: int, num_tags: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_words, EMB, padding_idx=0)
        self.lstm = nn.LSTM(EMB, HIDDEN, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * HIDDEN, num_tags)

    def forward(self, words: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.embedding(words))  # (B, T, EMB)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True)  # (B, T, 2 * HIDDEN)
        return self.out(self.dropout(out))  # (B, T, tags)


class Reference:
    """The plain loop: random batches, per-batch tensors from lists, packed LSTM.
    `pairs`: (tokens, tags) per utterance; `words`: word -> id (0 padding, 1 unknown);
    `tags`: the tag names, by id."""

    def __init__(self, pairs, words: dict[str, int], tags: list[str], seed: int,
                 dropout: float = 0.0) -> None:
        torch.manual_seed(seed)
        self.rng = random.Random(seed)
        self.words, self.tags = words, tags
        tag_ids = {tag: i for i, tag in enumerate(tags)}
        self.data = [(self.encode(tokens), [tag_ids[t] for t in tag_seq])
                     for tokens, tag_seq in pairs]
        self.model = ReferenceTagger(max(words.values()) + 1, len(tags), dropout)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.loss = nn.CrossEntropyLoss(ignore_index=-100)

    def encode(self, tokens) -> list[int]:
        return [self.words.get(w, 1) for w in tokens]

    def train_epoch(self) -> int:
        self.model.train()
        order = list(range(len(self.data)))
        self.rng.shuffle(order)
        tokens = 0
        for start in range(0, len(order), BATCH):
            items = [self.data[i] for i in order[start:start + BATCH]]
            lengths = torch.tensor([len(w) for w, _ in items])
            width = int(lengths.max())
            words = torch.tensor([w + [0] * (width - len(w)) for w, _ in items])
            tags = torch.tensor([t + [-100] * (width - len(t)) for _, t in items])
            scores = self.model(words, lengths)
            loss = self.loss(scores.reshape(-1, scores.size(-1)), tags.reshape(-1))
            self.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
            self.optimizer.step()
            tokens += int(lengths.sum())
        return tokens

    @torch.no_grad()
    def tag(self, token_lists) -> list[list[str]]:
        """Batches of EVAL_BATCH in the given order, padded and packed."""
        self.model.eval()
        result = []
        for start in range(0, len(token_lists), EVAL_BATCH):
            chunk = [self.encode(t) for t in token_lists[start:start + EVAL_BATCH]]
            lengths = torch.tensor([len(w) for w in chunk])
            width = int(lengths.max())
            words = torch.tensor([w + [0] * (width - len(w)) for w in chunk])
            best = self.model(words, lengths).argmax(-1)
            result += [[self.tags[i] for i in row[:n]]
                       for row, n in zip(best.tolist(), lengths.tolist())]
        return result


def from_vocabs(examples, vocabs, seed: int, dropout: float = 0.0) -> Reference:
    """The reference over slotfill's vocabularies (for in-process comparisons)."""
    return Reference([(e.tokens, e.tags) for e in examples], vocabs.words.stoi,
                     vocabs.tags.itos, seed, dropout)


def slotfill_config(atis: Path, seed: int, epochs: int, extra=(), threads: int | None = None):
    """The same model and recipe as the reference, through slotfill's config; `threads`
    None: torch's current count."""
    from slotfill.config import load_config
    threads = torch.get_num_threads() if threads is None else threads
    return load_config(ROOT / "configs" / "bilstm.yaml", [
        f"data.path={atis}", f"train.seed={seed}", f"train.epochs={epochs}",
        f"model.embedding_dim={EMB}", f"model.hidden_size={HIDDEN}",
        f"train.batch_size={BATCH}", "model.word_dropout=0", "model.embedding_dropout=0",
        "model.output_dropout=0", "train.clip=5", "train.device=cpu", "train.patience=0",
        f"train.threads={threads}", *extra])


# --------------------------------------------------------------------------- end to end

def read_split(folder: Path) -> list[tuple[list[str], list[str]]]:
    words = (folder / "seq.in").read_text(encoding="utf-8").splitlines()
    tags = (folder / "seq.out").read_text(encoding="utf-8").splitlines()
    return [(w.split(), t.split()) for w, t in zip(words, tags) if w.strip()]


def end_to_end(atis: Path, epochs: int, seed: int, dropout: float = 0.3) -> dict:
    """Read, train `epochs` epochs scoring dev after each, test with the best weights."""
    sys.path.insert(0, str(ROOT))
    from slotfill.analysis.metrics import score  # conlleval-exact, stdlib only

    started = time.perf_counter()
    train, dev, test = (read_split(atis / split) for split in ("train", "valid", "test"))
    words: dict[str, int] = {}
    for tokens, _ in train:
        for w in tokens:
            words.setdefault(w, len(words) + 2)  # 0: padding, 1: unknown
    tags = sorted({t for _, seq in train for t in seq})
    reference = Reference(train, words, tags, seed, dropout)
    best_f1, best_state = -1.0, None
    for _ in range(epochs):
        reference.train_epoch()
        f1 = score([t for _, t in dev], reference.tag([w for w, _ in dev]))["f1"]
        if f1 > best_f1:
            best_f1, best_state = f1, copy.deepcopy(reference.model.state_dict())
    reference.model.load_state_dict(best_state)
    test_f1 = score([t for _, t in test], reference.tag([w for w, _ in test]))["f1"]
    return {"dev_f1": best_f1, "test_f1": test_f1,
            "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--atis", type=Path, default=DEFAULT_ATIS)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(end_to_end(args.atis, args.epochs, args.seed)))


if __name__ == "__main__":
    main()
