"""Confidence of decoded spans and intents: CRF span marginals against brute-force
enumeration of every tag sequence, the softmax and decoder products against their
definitions, and what predict shows and filters."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from conftest import CONFIGS, tiny_overrides
from test_crf import TAGS, brute_force, make_head
from typer.testing import CliRunner

from slotfill.cli import app
from slotfill.data.bio import extract_spans
from slotfill.models.crf import CRFHead, allowed_transitions, chunk_relations
from slotfill.models.heads import SoftmaxHead
from slotfill.models.seq2seq import AttentionDecoder

KIND = {"a": 0, "b": 1}  # chunk kinds of TAGS, in chunk_relations' numbering


def crf_head(seed: int = 0, observed=()) -> CRFHead:
    head = make_head(seed, observed)
    head.chunks = chunk_relations(TAGS)
    return head


def holds(seq, span) -> bool:
    """Whether the tag id sequence holds the span (kind name, start, end)."""
    return span in extract_spans([TAGS[i] for i in seq])


def test_chunk_relations_decide_spans_as_extract_spans_does():
    continues, kinds = chunk_relations(TAGS)
    assert kinds.tolist() == [-1, KIND["a"], KIND["a"], KIND["b"], KIND["b"]]
    for seq in itertools.product(range(len(TAGS)), repeat=3):
        found = set()
        for start in range(3):
            for end in range(start + 1, 4):
                kind = int(kinds[seq[start]])
                opens = kind >= 0 and (start == 0 or not continues[seq[start - 1], seq[start]])
                inside = all(continues[seq[t - 1], seq[t]] for t in range(start + 1, end))
                closes = end == 3 or not continues[seq[end - 1], seq[end]]
                if opens and inside and closes:
                    found.add(("ab"[kind], start, end))
        assert found == set(extract_spans([TAGS[i] for i in seq])), seq


@pytest.mark.parametrize("observed", [(), [["I-b", "O", "I-a"]]], ids=["bio", "ill-formed"])
@pytest.mark.parametrize("lengths", [[1], [4], [4, 2, 3]])
def test_crf_span_marginals_match_enumeration(lengths, observed):
    """Every possible span of every kind: the summed probability of the tag sequences
    holding it (with ill-formed transitions seen in training, spans may open with I-x)."""
    head = crf_head(seed=1, observed=observed)
    torch.manual_seed(2)
    B, T = len(lengths), max(lengths)
    emissions = torch.randn(B, T, len(TAGS)) * 2
    mask = torch.arange(T) < torch.tensor(lengths).unsqueeze(1)
    spans, expected = [], []
    for b, n in enumerate(lengths):
        log_z, _, scores = brute_force(head, emissions[b, :n])
        for kind, start, end in itertools.product("ab", range(n), range(1, n + 1)):
            if start < end:
                p = sum(torch.exp(s - log_z) for seq, s in scores.items()
                        if holds(seq, (kind, start, end)))
                spans.append((b, start, end, KIND[kind]))
                expected.append(float(p.detach()))
    got = head.span_marginals(emissions, None if len(set(lengths)) == 1 else mask,
                              torch.tensor(spans))
    torch.testing.assert_close(got, torch.tensor(expected), rtol=1e-4, atol=1e-5)
    assert max(expected) > 0.15  # not a comparison of zeros


def test_crf_confidence_of_viterbi_spans_and_its_float32_under_autocast():
    head = crf_head(seed=3)
    torch.manual_seed(4)
    states = torch.randn(2, 4, 3)
    mask = torch.tensor([[True] * 4, [True, True, True, False]])
    tags = head.decode(states, mask)
    spans = torch.tensor([(b, s, e) for b in range(2)
                          for _, s, e in extract_spans([TAGS[i] for i in
                                                        tags[b, :int(mask[b].sum())]])])
    assert len(spans)
    confidence = head.span_confidence(states, mask, tags, spans)
    for (b, start, end), p in zip(spans.tolist(), confidence.tolist()):
        log_z, _, scores = brute_force(head, head(states)[b, :int(mask[b].sum())])
        kind = TAGS[int(tags[b, start])][2:]
        expected = sum(torch.exp(s - log_z) for seq, s in scores.items()
                       if holds(seq, (kind, start, end)))
        assert p == pytest.approx(float(expected.detach()), abs=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        again = head.span_confidence(states, mask, tags, spans)
    assert again.dtype == torch.float32


def test_crf_without_tag_names_says_what_it_needs():
    head = CRFHead(3, *allowed_transitions(TAGS))
    with pytest.raises(ValueError, match="chunk_relations"):
        head.span_confidence(torch.randn(1, 2, 3), None, torch.zeros(1, 2, dtype=torch.long),
                             torch.tensor([[0, 0, 1]]))


def test_softmax_confidence_is_the_product_of_token_probabilities():
    torch.manual_seed(5)
    head = SoftmaxHead(3, len(TAGS))
    states = torch.randn(2, 4, 3)
    tags = head.decode(states, None)
    probs = head(states).softmax(-1).detach()
    spans = torch.tensor([[0, 0, 2], [1, 1, 4], [1, 3, 4]])
    expected = [float(probs[b, s:e].gather(1, tags[b, s:e, None]).prod())
                for b, s, e in spans.tolist()]
    torch.testing.assert_close(head.span_confidence(states, None, tags, spans),
                               torch.tensor(expected))


def test_decoder_confidence_is_the_product_of_its_greedy_step_probabilities():
    torch.manual_seed(6)
    head = AttentionDecoder(3, 8, len(TAGS), bias=True).eval()
    states = torch.randn(2, 5, 3)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    scores, tags = head._steps(states, mask, None)  # greedy: each step's distribution
    probs = scores.softmax(-1).detach()
    spans = torch.tensor([[0, 0, 3], [0, 4, 5], [1, 1, 3]])
    expected = [float(probs[b, s:e].gather(1, tags[b, s:e, None]).prod())
                for b, s, e in spans.tolist()]
    torch.testing.assert_close(head.span_confidence(states, mask, tags, spans),
                               torch.tensor(expected))


@pytest.mark.parametrize("config", ["bilstm", "joint", "seq2seq"])
def test_tagger_confidence_leaves_the_decoding_alone(config, tmp_path):
    from slotfill.config import load_config
    from slotfill.data.batching import encode_split, make_batch
    from slotfill.data.corpus import read_corpus
    from slotfill.models import build_model
    from slotfill.training.prepare import prepare

    cfg = load_config(CONFIGS / f"{config}.yaml", tiny_overrides())
    prepared = prepare(cfg)
    torch.manual_seed(0)
    model = build_model(cfg.model, prepared.vocabs).eval()
    examples = read_corpus(cfg.data.path, "auto", splits=("test",))["test"]
    split = encode_split(examples, prepared.vocabs)
    batch = make_batch(split, torch.arange(len(examples)))
    with torch.no_grad():
        tags, intents = model.decode(batch)
        tags2, intents2, sure = model.decode_with_confidence(batch)
    assert torch.equal(tags, tags2)
    names = prepared.vocabs.tags.itos
    for row, n, found in zip(tags.tolist(), batch.lengths.tolist(), sure.spans):
        spans = extract_spans([names[i] for i in row[:n]])
        assert set(found) == {(s, e) for _, s, e in spans}
        assert all(0.0 <= p <= 1.0 for p in found.values())
    if cfg.model.intent:
        assert torch.equal(intents, intents2)
        assert all(0.0 < p <= 1.0 for p in sure.intents)
    else:
        assert intents2 is None and sure.intents is None


def test_predict_shows_json_and_filters_confidence(trained_intent_run):
    runner = CliRunner()
    text = "flights from boston to denver on nov 2nd"
    result = runner.invoke(app, ["predict", "--model", str(trained_intent_run), "--json", text])
    assert result.exit_code == 0, result.output
    full = json.loads(result.stdout)
    assert full["slots"] and 0.0 < full["intent_confidence"] <= 1.0
    assert all(0.0 <= s["confidence"] <= 1.0 for s in full["slots"])
    cut = sorted(s["confidence"] for s in full["slots"])[len(full["slots"]) // 2]
    result = runner.invoke(app, ["predict", "--model", str(trained_intent_run), "--json",
                                 "--min-confidence", str(cut), text])
    kept = json.loads(result.stdout)
    assert [s for s in full["slots"] if s["confidence"] >= cut] == kept["slots"]
    assert [k for k, _, _ in extract_spans(kept["tags"])] == [s["slot"] for s in kept["slots"]]
    table = runner.invoke(app, ["predict", "--model", str(trained_intent_run), text]).stdout
    assert f"confidence {full['intent_confidence']:.2f}" in table
    assert f"confidence {full['slots'][0]['confidence']:.2f}" in table
    result = runner.invoke(app, ["predict", "--model", str(trained_intent_run),
                                 "--min-confidence", "1.5", text])
    assert result.exit_code == 2
