"""Pre-tensorized corpora and batches.

A split is converted to tensors once (`encode_split`); a batch is then one `index_select`.
Two batching strategies for training:
- `bucket`: every batch holds utterances of exactly one length, so there is no padding to
  mask; the batches of one epoch are shuffled across lengths.
- `random`: uniformly random batches, padded to their longest utterance.
Inference sorts utterances by length and fills whole batches (`sorted_batches`).
Either way the encoders run torch's fused recurrent kernels on dense tensors, and padding
never changes a result (see models/encoders.py).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from slotfill.data.compact import ExampleArray, StringTable
from slotfill.data.corpus import Example
from slotfill.data.vocab import Vocab, Vocabs


@dataclass
class EncodedSplit:
    words: Tensor  # (N, T_max) word ids, 0 = padding
    lengths: Tensor  # (N,) utterance lengths, on the CPU
    tags: Tensor | None = None  # (N, T_max) tag ids, 0 at padding (training data only)
    intents: Tensor | None = None  # (N,) intent ids (training data only)
    spellings: Tensor | None = None  # (N, T_max) row of each token in `chars`, 0 = padding
    chars: Tensor | None = None  # (S, C_max) char ids of each distinct token; row 0 empty
    features: Tensor | None = None  # (N, T_max, F) gazetteer features, 0 at padding
    pieces: Tensor | None = None  # (N, P_max) a transformer's sub-word ids, 0 = padding
    piece_lengths: Tensor | None = None  # (N,) pieces per utterance, on the CPU
    first: Tensor | None = None  # (N, T_max) position of each word's first piece
    # distillation (training/distill.py): the teachers' per-word tag distributions
    # (N, T_max, K), intent distributions (N, I) and each utterance's weight (N,)
    soft_tags: Tensor | None = None
    soft_intents: Tensor | None = None
    soft_weight: Tensor | None = None

    def __len__(self) -> int:
        return len(self.lengths)

    def to(self, device: torch.device) -> EncodedSplit:
        move = {k: (v.to(device) if isinstance(v, Tensor)
                    and k not in ("lengths", "piece_lengths") else v)
                for k, v in vars(self).items()}
        return EncodedSplit(**move)


@dataclass
class Batch:
    words: Tensor  # (B, T) word ids
    lengths: Tensor  # (B,) on the CPU
    mask: Tensor | None  # (B, T) True at real tokens; None when all lengths are T
    index: Tensor  # (B,) positions of these utterances in their split
    tags: Tensor | None = None  # (B, T) gold tag ids, for training
    intents: Tensor | None = None  # (B,) gold intent ids, for training
    spellings: Tensor | None = None  # (B, T) rows of `chars`
    chars: Tensor | None = None  # (S, C) the split's spelling table
    features: Tensor | None = None  # (B, T, F) gazetteer features
    pieces: Tensor | None = None  # (B, P) sub-word ids (model.transformer)
    piece_mask: Tensor | None = None  # (B, P) True at real pieces
    first: Tensor | None = None  # (B, T) position of each word's first piece
    soft_tags: Tensor | None = None  # (B, T, K) the teachers' tag distributions
    soft_intents: Tensor | None = None  # (B, I) the teachers' intent distributions
    soft_weight: Tensor | None = None  # (B,) 0 where the targets do not apply


def encode_split(examples: Sequence[Example], vocabs: Vocabs,
                 labels: bool = False, compact: bool = False) -> EncodedSplit:
    """Tensors for a split. With `labels` (training data), tags and intents are encoded
    too, and every one of them must be in the vocabularies. `compact` stores the id
    tensors as int32 (half the memory of a large training split; batches are int64)."""
    arrays = examples if isinstance(examples, ExampleArray) else None
    lengths = torch.tensor(arrays.lengths() if arrays else [len(e.tokens) for e in examples],
                           dtype=torch.long)
    width = int(lengths.max()) if len(examples) else 0
    real = torch.arange(width) < lengths.unsqueeze(1)  # (N, T) True at real tokens
    dtype = torch.int32 if compact else torch.long

    def padded(ids: list[int] | Tensor) -> Tensor:
        out = torch.zeros(len(examples), width, dtype=dtype)
        out[real] = torch.as_tensor(ids, dtype=dtype)
        return out

    if arrays is not None:
        split = EncodedSplit(padded(_lookup(vocabs.words, arrays.words, arrays.word_ids)),
                             lengths)
    else:
        split = EncodedSplit(padded([vocabs.words.index(w) for e in examples
                                     for w in e.tokens]), lengths)
    if labels:
        split.tags = padded(_lookup(vocabs.tags, arrays.tags, arrays.tag_ids) if arrays
                            else [vocabs.tags.index(t) for e in examples for t in e.tags])
        if vocabs.intents is not None:
            split.intents = (_lookup(vocabs.intents, arrays.intents, arrays.intent_ids)
                             if arrays else
                             torch.tensor([vocabs.intents.index(e.intent) for e in examples]))
    if vocabs.chars is not None and arrays is not None:
        # a row of `chars` for each distinct word of the arrays (row 0: padding)
        split.spellings = padded(torch.frombuffer(arrays.word_ids, dtype=torch.int32) + 1)
        split.chars = _spelled([""] + arrays.words.strings, vocabs)
    elif vocabs.chars is not None:
        rows: dict[str, int] = {"": 0}
        split.spellings = padded([rows.setdefault(w, len(rows))
                                  for e in examples for w in e.tokens])
        split.chars = _spelled(list(rows), vocabs)
    if vocabs.gazetteers is not None:
        split.features = torch.zeros(len(examples), width, vocabs.gazetteers.size)
        for i, example in enumerate(examples):
            split.features[i, :len(example.tokens)] = torch.tensor(
                vocabs.gazetteers.features(example.tokens)).view(-1, vocabs.gazetteers.size)
    if vocabs.subwords is not None:
        encoded = [vocabs.subwords.encode(e.tokens) for e in examples]
        split.piece_lengths = torch.tensor([len(ids) for ids, _ in encoded], dtype=torch.long)
        longest = int(split.piece_lengths.max()) if len(examples) else 0
        split.pieces = torch.zeros(len(examples), longest, dtype=torch.long)
        for i, (ids, _) in enumerate(encoded):
            split.pieces[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        split.first = padded([p for _, first in encoded for p in first])
    return split


def _lookup(vocab: Vocab, table: StringTable, ids: array) -> Tensor:
    """(W,) the vocabulary ids of an ExampleArray's string ids (a KeyError for a string
    the vocabulary lacks, as Vocab.index gives, or for an absent intent)."""
    mapping = torch.tensor([vocab.index(s) for s in table.strings], dtype=torch.long)
    if not len(ids):
        return torch.zeros(0, dtype=torch.long)
    ids = torch.frombuffer(ids, dtype=torch.int32).long()
    if int(ids.min()) < 0:
        raise KeyError(None)
    return mapping[ids]


def _spelled(words: list[str], vocabs: Vocabs) -> Tensor:
    """(S, C_max) the character ids of each word; row 0 (the empty word) is padding."""
    chars = torch.zeros(len(words), max(map(len, words)), dtype=torch.long)
    for row, word in enumerate(words):
        if word:
            chars[row, :len(word)] = torch.tensor(vocabs.chars.encode(word))
    return chars


def long_ids(t: Tensor) -> Tensor:
    """Ids as the layers take them (int64), from a compact split's int32 too."""
    return t.long() if t.dtype == torch.int32 else t


def make_batch(split: EncodedSplit, index: Tensor) -> Batch:
    lengths = split.lengths[index]
    width = int(lengths.max())
    device_index = index.to(split.words.device)

    def rows(t: Tensor | None) -> Tensor | None:
        return None if t is None else long_ids(t.index_select(0, device_index)[:, :width])

    words = rows(split.words)
    uniform = bool((lengths == width).all())
    intents = None if split.intents is None else split.intents.index_select(0, device_index)
    batch = Batch(words, lengths, None if uniform else words != 0, index, rows(split.tags),
                  intents, rows(split.spellings), split.chars, rows(split.features))
    if split.soft_tags is not None:
        batch.soft_tags, batch.soft_weight = rows(split.soft_tags), \
            split.soft_weight.index_select(0, device_index)
        if split.soft_intents is not None:
            batch.soft_intents = split.soft_intents.index_select(0, device_index)
    if split.pieces is not None:
        piece_lengths = split.piece_lengths[index]
        pieces = split.pieces.index_select(0, device_index)[:, :int(piece_lengths.max())]
        batch.pieces, batch.first = pieces, rows(split.first)
        batch.piece_mask = (torch.arange(pieces.size(1)) < piece_lengths.unsqueeze(1)
                            ).to(pieces.device)  # (B, P)
    return batch


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


def sorted_batches(lengths: Tensor, batch_size: int, slack: float = 0.2) -> list[Tensor]:
    """Index tensors of batches in order of length, for inference: each batch holds up to
    `batch_size` utterances and at most `slack` more padded positions than real tokens.
    Padding itself is harmless (encoders reverse within each length); this bounds its cost."""
    order = lengths.argsort(stable=True)
    sizes = lengths[order].tolist()
    batches, start, real = [], 0, 0
    for i, n in enumerate(sizes):
        count = i - start + 1
        if count > batch_size or count * n > (1 + slack) * (real + n):
            batches.append(order[start:i])
            start, real = i, 0
        real += n
    if start < len(sizes):
        batches.append(order[start:])
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
