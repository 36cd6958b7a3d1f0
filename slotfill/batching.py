"""Pre-tensorized corpora and batches.

A split is converted to tensors once (`encode_split`); a batch is then one `index_select`.
Two batching strategies:
- `bucket`: every batch holds utterances of exactly one length, so no padding and no
  packing is needed and the fused recurrent kernels run on plain dense tensors; the
  batches of one epoch are shuffled across lengths.
- `random`: uniformly random batches, padded to their longest utterance (and packed by the
  encoders), as in a plain PyTorch loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from slotfill.corpus import Example
from slotfill.vocab import Vocab


@dataclass
class EncodedSplit:
    words: Tensor  # (N, T_max) word ids, 0 = padding
    lengths: Tensor  # (N,) utterance lengths, on the CPU
    tags: Tensor | None  # (N, T_max) tag ids, 0 at padding; None when not for training

    def __len__(self) -> int:
        return len(self.lengths)

    def to(self, device: torch.device) -> EncodedSplit:
        tags = self.tags.to(device) if self.tags is not None else None
        return EncodedSplit(self.words.to(device), self.lengths, tags)


@dataclass
class Batch:
    words: Tensor  # (B, T) word ids
    lengths: Tensor  # (B,) on the CPU
    mask: Tensor | None  # (B, T) True at real tokens; None when all lengths are T
    tags: Tensor | None  # (B, T) gold tag ids, for training
    index: Tensor  # (B,) positions of these utterances in their split


def encode_split(examples: Sequence[Example], words: Vocab,
                 tags: Vocab | None = None) -> EncodedSplit:
    """Tensors for a split; `tags` given means every tag must be in it (training data)."""
    lengths = torch.tensor([len(e.tokens) for e in examples], dtype=torch.long)
    width = int(lengths.max()) if len(examples) else 0
    word_ids = torch.zeros(len(examples), width, dtype=torch.long)
    tag_ids = torch.zeros(len(examples), width, dtype=torch.long) if tags else None
    for i, example in enumerate(examples):
        n = len(example.tokens)
        word_ids[i, :n] = torch.tensor(words.encode(example.tokens))
        if tag_ids is not None:
            tag_ids[i, :n] = torch.tensor(tags.encode(example.tags))
    return EncodedSplit(word_ids, lengths, tag_ids)


def make_batch(split: EncodedSplit, index: Tensor) -> Batch:
    lengths = split.lengths[index]
    width = int(lengths.max())
    device_index = index.to(split.words.device)
    words = split.words.index_select(0, device_index)[:, :width]
    tags = split.tags.index_select(0, device_index)[:, :width] if split.tags is not None \
        else None
    uniform = bool((lengths == width).all())
    mask = None if uniform else words != 0
    return Batch(words, lengths, mask, tags, index)


def bucket_batches(lengths: Tensor, batch_size: int,
                   generator: torch.Generator | None = None) -> list[Tensor]:
    """Index tensors of equal-length batches. Each length group is split into the fewest
    batches of at most `batch_size`, sized evenly. With a generator, utterances are
    shuffled within their length and the batches shuffled across lengths."""
    order = (torch.randperm(len(lengths), generator=generator) if generator is not None
             else torch.arange(len(lengths)))
    order = order[lengths[order].argsort(stable=True)]  # by length, shuffled within
    batches: list[Tensor] = []
    counts = torch.bincount(lengths[order])
    start = 0
    for count in counts.tolist():
        if count:
            pieces = -(-count // batch_size)  # ceil
            batches.extend(order[start:start + count].tensor_split(pieces))
            start += count
    if generator is not None:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
    return batches


def random_batches(size: int, batch_size: int,
                   generator: torch.Generator | None = None) -> list[Tensor]:
    """Index tensors of consecutive batches over a random permutation (or in order)."""
    order = (torch.randperm(size, generator=generator) if generator is not None
             else torch.arange(size))
    return list(order.split(batch_size))


def batches_for(split: EncodedSplit, strategy: str, batch_size: int,
                generator: torch.Generator | None = None) -> list[Tensor]:
    if strategy == "bucket":
        return bucket_batches(split.lengths, batch_size, generator)
    return random_batches(len(split), batch_size, generator)
