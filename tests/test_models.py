from __future__ import annotations

import pytest
import torch

from slotfill.config import Config
from slotfill.data.batching import encode_split, make_batch
from slotfill.data.corpus import Example
from slotfill.data.vocab import Vocabs
from slotfill.models import build_model
from slotfill.models.encoders import reverse_padded

TAGS = ("O", "B-a", "I-a", "B-b")
EXAMPLES = [Example(tuple(f"w{(i * 7 + j) % 11}" for j in range(n)),
                    tuple(TAGS[(i + j) % 4] for j in range(n)), f"intent{i % 3}")
            for i, n in enumerate([4, 2, 7, 1, 4, 5])]
ALL_TYPES = ["rnn", "jordan", "lstm", "gru", "seq2seq"]


def model_cfg(**changes):
    base = {"hidden_size": 8, "embedding_dim": 6, **changes}
    return Config.from_dict({"model": base}).model


def build(cfg):
    vocabs = Vocabs.build(EXAMPLES, chars=cfg.char != "none")
    return build_model(cfg, vocabs), vocabs


def test_reverse_padded_reverses_within_length_and_is_an_involution():
    x = torch.arange(8.0).view(2, 4, 1)
    lengths = torch.tensor([4, 2])
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    rev = reverse_padded(x, lengths, mask)
    assert rev[:, :, 0].tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]
    assert torch.equal(reverse_padded(rev, lengths, mask), x)


VARIANTS = [dict(type=t, bidirectional=b, num_layers=2) for t in ALL_TYPES
            for b in (False, True)] + [
    dict(type="lstm", bidirectional=True, char="cnn", context_window=2, head="crf",
         intent=True),
    dict(type="gru", char="lstm", char_size=6, context_window=1, intent=True),
    dict(type="jordan", bidirectional=True, head="crf", context_window=1),
    dict(type="seq2seq", bidirectional=True, char="cnn", intent=True),
    dict(type="lstm", bidirectional=True, attention_heads=2, head="crf", intent=True,
         intent_level="token", intent_to_slots=True),
    dict(type="gru", attention_heads=4, intent=True, intent_to_slots=True),
    dict(type="rnn", intent=True, intent_level="token"),
    # the refinement pass, multi-label intents, the slot-reading intent head
    dict(type="lstm", bidirectional=True, char="cnn", head="crf", intent=True, refine=True,
         multi_intent=True),
    dict(type="jordan", refine=True),
    dict(type="seq2seq", refine=True, intent=True),
    dict(type="rnn", bidirectional=True, refine=True, intent=True, intent_reads_slots=True),
    dict(type="gru", head="crf", intent=True, intent_reads_slots=True, intent_level="token",
         multi_intent=True),
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v.values())))
def test_padded_batches_decode_like_unpadded_ones(variant):
    """Padding (reversed within length, zero windows, masked chars) never changes an
    utterance's result."""
    torch.manual_seed(0)
    model, vocabs = build(model_cfg(**variant))
    model.eval()
    split = encode_split(EXAMPLES, vocabs)
    padded = make_batch(split, torch.arange(len(EXAMPLES)))
    assert padded.mask is not None
    with torch.no_grad():
        tags, intents = model.decode(padded)
        scores = model.scores(padded) if hasattr(model, "scores") else None
        for i, example in enumerate(EXAMPLES):
            alone = make_batch(split, torch.tensor([i]))
            n = len(example.tokens)
            alone_tags, alone_intents = model.decode(alone)
            assert tags[i, :n].tolist() == alone_tags[0].tolist()
            if scores is not None:
                torch.testing.assert_close(scores[i, :n], model.scores(alone)[0],
                                           rtol=1e-5, atol=1e-5)
            if intents is not None:  # label ids, or the chosen atoms of multi-intent
                assert torch.equal(intents[i], alone_intents[0])


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v.values())))
def test_every_parameter_gets_a_gradient(variant):
    torch.manual_seed(0)
    model, vocabs = build(model_cfg(**variant))
    loss = model.loss(make_batch(encode_split(EXAMPLES, vocabs, labels=True),
                                 torch.arange(len(EXAMPLES))))
    assert loss.item() > 0
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    # padding rows of embeddings are the only parameters allowed a zero gradient
    assert not missing, missing


@pytest.mark.parametrize("kind", ALL_TYPES)
def test_every_knob_reaches_the_model(kind):
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    small = count(build(model_cfg(type=kind))[0])
    big = count(build(model_cfg(type=kind, bidirectional=True, num_layers=3, dropout=0.5,
                                hidden_size=12))[0])
    no_bias = count(build(model_cfg(type=kind, bias=False))[0])
    window = count(build(model_cfg(type=kind, context_window=2))[0])
    chars = count(build(model_cfg(type=kind, char="cnn"))[0])
    assert big > small > no_bias and window > small and chars > small


def test_jordan_feeds_back_the_tag_distribution():
    """One-directional Jordan: the fed-back distribution is the model's own output layer,
    so changing the tag layer changes later steps but not the first."""
    torch.manual_seed(0)
    model, vocabs = build(model_cfg(type="jordan"))
    model.eval()
    assert model.encoder.layers[0][0].output is model.head.linear
    batch = make_batch(encode_split(EXAMPLES, vocabs), torch.tensor([2]))
    run = lambda: model.encoder(model.embedder(batch), batch.lengths, None)  # noqa: E731
    before = run()
    with torch.no_grad():
        model.head.linear.weight.add_(torch.randn_like(model.head.linear.weight))
    after = run()
    torch.testing.assert_close(before[:, 0], after[:, 0])
    assert not torch.allclose(before[:, 1:], after[:, 1:])


def test_relu_nonlinearity_is_used():
    for kind in ("rnn", "jordan"):
        model, vocabs = build(model_cfg(type=kind, nonlinearity="relu", embedding_dim=4))
        model.eval()
        batch = make_batch(encode_split(EXAMPLES, vocabs), torch.tensor([2]))
        states = model.encoder(model.embedder(batch), batch.lengths, None)
        assert (states >= 0).all() and (states == 0).any()


def test_context_window_reads_neighbours():
    """With a window, changing the next word changes this word's scores in a
    left-to-right tagger; without one it cannot."""
    for window, changes in ((0, False), (1, True)):
        torch.manual_seed(0)
        model, vocabs = build(model_cfg(type="lstm", context_window=window))
        model.eval()
        split = encode_split([EXAMPLES[2]], vocabs)
        batch = make_batch(split, torch.tensor([0]))
        before = model.scores(batch)[0, 0]
        batch.words = batch.words.clone()
        batch.words[0, 1] = vocabs.words.index("w10")
        after = model.scores(batch)[0, 0]
        assert (not torch.allclose(before, after)) == changes


def test_locked_dropout_shares_the_mask_over_time():
    from slotfill.models.embedder import SequenceDropout
    drop = SequenceDropout(0.5, locked=True).train()
    out = drop(torch.ones(4, 6, 10))
    assert torch.equal(out[:, :1].expand_as(out), out)
    assert set(out.unique().tolist()) <= {0.0, 2.0}


@pytest.mark.parametrize("kind, nonlinearity", [("lstm", None), ("gru", None),
                                                ("rnn", "tanh"), ("rnn", "relu")])
def test_both_directions_in_one_call_equal_two_calls(kind, nonlinearity):
    from slotfill.models.encoders import StackedEncoder, TorchRecurrence, both_directions
    cfg = Config.from_dict({"model": {"type": kind, "bidirectional": True, "num_layers": 2,
                                      "hidden_size": 6, "dropout": 0.0,
                                      **({"nonlinearity": nonlinearity} if nonlinearity else {})}}
                           ).model
    torch.manual_seed(0)
    encoder = StackedEncoder(cfg, 5, lambda layer, direction, size: TorchRecurrence(cfg, size))
    x = torch.randn(3, 4, 5, requires_grad=True)  # (B, T, I), no padding
    assert both_directions(*encoder.layers[0], x) is not None  # the one-call path is taken
    lengths = torch.full((3,), 4)
    fused = encoder(x, lengths, None)  # (B, T, 2H): one call per layer
    grads = torch.autograd.grad(fused.square().sum(), [x, *encoder.parameters()])
    mask = torch.ones(3, 4, dtype=torch.bool)  # the same batch through the two-call path
    apart = encoder(x, lengths, mask)
    assert torch.allclose(fused, apart, atol=1e-6)
    for a, b in zip(grads, torch.autograd.grad(apart.square().sum(), [x, *encoder.parameters()])):
        assert torch.allclose(a, b, atol=1e-5)
