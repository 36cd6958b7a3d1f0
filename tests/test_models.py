from __future__ import annotations

import dataclasses

import pytest
import torch

from slotfill.batching import encode_split, make_batch
from slotfill.config import Config
from slotfill.corpus import Example
from slotfill.models import build_model
from slotfill.models.encoders import reverse_padded
from slotfill.vocab import Vocabs

TAGS = ("O", "B-a", "I-a", "B-b")
EXAMPLES = [Example(tuple(f"w{(i * 7 + j) % 11}" for j in range(n)),
                    tuple(TAGS[(i + j) % 4] for j in range(n)))
            for i, n in enumerate([4, 2, 7, 1, 4, 5])]


def model_cfg(**changes):
    base = {"hidden_size": 8, "embedding_dim": 6, **changes}
    return Config.from_dict({"model": base}).model


def test_reverse_padded_reverses_within_length_and_is_an_involution():
    x = torch.arange(8.0).view(2, 4, 1)
    lengths = torch.tensor([4, 2])
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    rev = reverse_padded(x, lengths, mask)
    assert rev[:, :, 0].tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]
    assert torch.equal(reverse_padded(rev, lengths, mask), x)


ALL_TYPES = ["rnn", "jordan", "lstm", "gru"]


@pytest.mark.parametrize("kind", ALL_TYPES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_batches_score_like_unpadded_ones(kind, bidirectional):
    """Padding (packed or reversed within length) never changes an utterance's scores."""
    torch.manual_seed(0)
    vocabs = Vocabs.build(EXAMPLES)
    cfg = model_cfg(type=kind, bidirectional=bidirectional, num_layers=2)
    model = build_model(cfg, len(vocabs.words), len(vocabs.tags)).eval()
    split = encode_split(EXAMPLES, vocabs.words, vocabs.tags)
    padded = make_batch(split, torch.arange(len(EXAMPLES)))
    assert padded.mask is not None
    together = model.scores(padded)  # (B, T, K)
    for i, example in enumerate(EXAMPLES):
        alone = model.scores(make_batch(split, torch.tensor([i])))
        n = len(example.tokens)
        torch.testing.assert_close(together[i, :n], alone[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ALL_TYPES)
def test_every_knob_reaches_the_encoder(kind):
    vocabs = Vocabs.build(EXAMPLES)
    small = build_model(model_cfg(type=kind), len(vocabs.words), len(vocabs.tags))
    big = build_model(model_cfg(type=kind, bidirectional=True, num_layers=3, dropout=0.5,
                                hidden_size=12), len(vocabs.words), len(vocabs.tags))
    no_bias = build_model(model_cfg(type=kind, bias=False), len(vocabs.words),
                          len(vocabs.tags))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(big) > count(small) > count(no_bias)
    loss = big.loss(make_batch(encode_split(EXAMPLES, vocabs.words, vocabs.tags),
                               torch.arange(len(EXAMPLES))))
    loss.backward()
    assert all(p.grad is not None for p in big.parameters())


def test_jordan_feeds_back_the_tag_distribution():
    """One-directional Jordan: the fed-back distribution is the model's own output layer,
    so changing the tag layer changes later steps but not the first."""
    torch.manual_seed(0)
    vocabs = Vocabs.build(EXAMPLES)
    model = build_model(model_cfg(type="jordan"), len(vocabs.words), len(vocabs.tags)).eval()
    layer = model.encoder.layers[0][0]
    assert layer.output is model.head.linear
    batch = make_batch(encode_split(EXAMPLES, vocabs.words, vocabs.tags), torch.tensor([2]))
    before = model.encoder(model.embedding(batch.words), batch.lengths, None)
    with torch.no_grad():
        model.head.linear.weight.add_(torch.randn_like(model.head.linear.weight))
    after = model.encoder(model.embedding(batch.words), batch.lengths, None)
    torch.testing.assert_close(before[:, 0], after[:, 0])
    assert not torch.allclose(before[:, 1:], after[:, 1:])


def test_relu_nonlinearity_is_used():
    vocabs = Vocabs.build(EXAMPLES)
    for kind in ("rnn", "jordan"):
        model = build_model(model_cfg(type=kind, nonlinearity="relu", embedding_dim=4),
                            len(vocabs.words), len(vocabs.tags)).eval()
        batch = make_batch(encode_split(EXAMPLES, vocabs.words), torch.tensor([2]))
        states = model.encoder(model.embedding(batch.words), batch.lengths, None)
        assert (states >= 0).all() and (states == 0).any()
