from __future__ import annotations

import torch

from slotfill.data.batching import (
    bucket_batches,
    encode_split,
    make_batch,
    random_batches,
)
from slotfill.data.corpus import Example
from slotfill.data.vocab import Vocabs

EXAMPLES = [Example(tuple(f"w{j}" for j in range(n)), ("O",) * n) for n in
            [3, 1, 3, 2, 5, 3, 3, 2, 1, 3]]


def test_bucket_batches_cover_everything_once_with_equal_lengths():
    lengths = torch.tensor([len(e.tokens) for e in EXAMPLES])
    batches = bucket_batches(lengths, batch_size=2, generator=torch.Generator().manual_seed(0))
    flat = torch.cat(batches).tolist()
    assert sorted(flat) == list(range(len(EXAMPLES)))
    for index in batches:
        assert len(index) <= 2 and len(set(lengths[index].tolist())) == 1
    # five utterances of length 3 -> ceil(5/2) = 3 batches, sized evenly (2, 2, 1)
    assert sorted(len(b) for b in batches if lengths[b[0]] == 3) == [1, 2, 2]


def test_bucket_batches_are_deterministic_per_seed_and_shuffled():
    lengths = torch.randint(1, 20, (500,))
    runs = [bucket_batches(lengths, 8, torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert [b.tolist() for b in runs[0]] == [b.tolist() for b in runs[1]]
    assert [b.tolist() for b in runs[0]] != [b.tolist() for b in runs[2]]
    in_order = [int(lengths[b[0]]) for b in runs[0]]
    assert in_order != sorted(in_order)  # batch order is shuffled across lengths


def test_random_batches():
    batches = random_batches(10, 4, torch.Generator().manual_seed(0))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))


def test_make_batch_pads_only_mixed_lengths():
    vocabs = Vocabs.build(EXAMPLES)
    split = encode_split(EXAMPLES, vocabs, labels=True)
    uniform = make_batch(split, torch.tensor([0, 2]))
    assert uniform.mask is None and uniform.words.shape == (2, 3)
    mixed = make_batch(split, torch.tensor([1, 4]))
    assert mixed.words.shape == (2, 5)
    assert mixed.mask.tolist() == [[True, False, False, False, False], [True] * 5]
