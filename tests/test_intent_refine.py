"""Multi-label intents (labels joined by `#` as sets), the slot-reading intent head, the
refinement pass; intent accuracy as a set and as the exact string; old checkpoints."""

from __future__ import annotations

import json
import random

import pytest
import torch
import torch.nn.functional as F
from conftest import CONFIGS, TINY, tiny_overrides
from typer.testing import CliRunner

import slotfill
from slotfill.analysis.evaluate import SplitScorer, evaluate_checkpoint
from slotfill.analysis.metrics import Counts, score
from slotfill.cli import app
from slotfill.config import Config, load_config
from slotfill.data.batching import encode_split, make_batch
from slotfill.data.bio import extract_spans
from slotfill.errors import CheckpointError, ConfigError
from slotfill.models import build_model
from slotfill.models.checkpoint import save_checkpoint
from slotfill.models.intent import IntentHead
from slotfill.models.intent_sets import IntentSets, intent_set
from slotfill.models.refine import ChunkStarts
from slotfill.serving.predict import Predictor
from slotfill.training.ensemble import build_ensemble
from slotfill.training.prepare import prepare
from slotfill.training.run import train

LABELS = ["atis_flight", "atis_flight#atis_airfare", "atis_airfare", "atis_airline",
          "atis_airfare#atis_flight"]


def mixed_corpus(root):
    """The tiny corpus with MixATIS-style labels: some training utterances carry two
    intents joined by `#`."""
    for split in ("train", "valid", "test"):
        (root / split).mkdir()
        for name in ("seq.in", "seq.out"):
            (root / split / name).write_text((TINY / split / name).read_text())
        labels = (TINY / split / "label").read_text().splitlines()
        mixed = [f"{label}#atis_airfare" if label == "atis_flight" and i % 3 == 0 else label
                 for i, label in enumerate(labels)]
        (root / split / "label").write_text("\n".join(mixed) + "\n")
    return root


def test_intent_sets_name_known_sets_as_trained_and_new_ones_most_frequent_first():
    sets = IntentSets(LABELS)
    assert sets.atoms == ["atis_flight", "atis_airfare", "atis_airline"]
    assert intent_set("atis_airfare#atis_flight") == intent_set("atis_flight#atis_airfare")
    flight, fare, airline = 0, 1, 2
    assert sets.name([fare, flight]) == "atis_flight#atis_airfare"  # the first such label
    assert sets.name([airline, flight]) == "atis_flight#atis_airline"  # never in training
    assert sets.name([airline]) == "atis_airline"
    assert sets.members("atis_airfare#atis_flight") == sets.members("atis_flight#atis_airfare")


def test_intent_accuracy_compares_sets_and_also_reports_exact_strings():
    gold = ["atis_flight#atis_airfare", "atis_flight", "atis_airline"]
    predicted = ["atis_airfare#atis_flight", "atis_flight", "atis_flight"]
    scores = score([["O"]] * 3, [["O"]] * 3, gold, predicted)
    assert scores["intent_accuracy"] == pytest.approx(2 / 3)
    assert scores["intent_string_accuracy"] == pytest.approx(1 / 3)
    assert scores["overall_accuracy"] == pytest.approx(2 / 3)
    assert scores["overall_string_accuracy"] == pytest.approx(1 / 3)
    parts = [Counts(), Counts()]  # counts from two processes add up
    for i, (g, p) in enumerate(zip(gold, predicted)):
        parts[i % 2].add(["O"], ["O"], g, p)
    assert parts[0].merge(parts[1]).scores() == scores


def test_multi_label_head_chooses_atoms_above_the_threshold_and_at_least_one():
    head = IntentHead(4, LABELS, multi=True, threshold=0.5)
    probabilities = torch.tensor([[0.9, 0.7, 0.1], [0.2, 0.3, 0.1], [0.6, 0.1, 0.55]])
    chosen, p = head.choose(probabilities)
    assert chosen.tolist() == [[True, True, False], [False, True, False], [True, False, True]]
    torch.testing.assert_close(p[0], torch.tensor(0.9 * 0.7 * 0.9))  # P(exactly this set)
    assert head.names(chosen) == ["atis_flight#atis_airfare", "atis_airfare",
                                  "atis_flight#atis_airline"]
    scores = torch.randn(2, 3)
    gold = torch.tensor([4, 3])  # atis_airfare#atis_flight, atis_airline
    target = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    expected = F.binary_cross_entropy_with_logits(scores, target, reduction="sum") / 2
    torch.testing.assert_close(head.loss(scores, gold), expected)


def test_a_multi_intent_model_predicts_sets_training_never_shows(tmp_path):
    corpus = mixed_corpus(tmp_path)
    cfg = load_config(CONFIGS / "joint.yaml", [*tiny_overrides(), f"data.path={corpus}",
                                               "model.multi_intent=true"])
    prepared = prepare(cfg)
    assert "atis_flight#atis_airfare" in prepared.vocabs.intents
    model = build_model(cfg.model, prepared.vocabs).eval()
    head = model.intent_head
    assert head.sets.atoms[:2] == ["atis_flight", "atis_airfare"]
    scorer = SplitScorer(prepared.corpus["test"], prepared.vocabs)
    with torch.no_grad():  # the head says: flights and ground service, never seen together
        head.linear.weight.zero_()
        head.linear.bias.fill_(-8.0)
        head.linear.bias[head.sets.index["atis_flight"]] = 8.0
        head.linear.bias[head.sets.index["atis_ground_service"]] = 8.0
    predicted = scorer.predict(model, confidence=True)
    assert set(predicted.intents) == {"atis_flight#atis_ground_service"}
    assert min(predicted.intent_confidence) > 0.99
    save_checkpoint(tmp_path / "best.pt", model, cfg, prepared.vocabs, {})
    result = slotfill.load(tmp_path / "best.pt").predict("flights to boston")[0]
    assert result.intents == ["atis_flight", "atis_ground_service"]
    assert result.intent == "atis_flight#atis_ground_service" and result.intent_confidence > 0.99
    shown = CliRunner().invoke(app, ["predict", "-m", str(tmp_path / "best.pt"), "--json",
                                     "flights to boston"])
    assert json.loads(shown.output)["intent"] == "atis_flight#atis_ground_service", shown.output
    with torch.no_grad():
        head.linear.bias[head.sets.index["atis_ground_service"]] = -8.0
        head.linear.bias[head.sets.index["atis_airfare"]] = 8.0
    assert set(scorer.predict(model).intents) == {"atis_flight#atis_airfare"}
    scores = scorer.count(scorer.predict(model)).scores()
    gold = [e.intent for e in prepared.corpus["test"]]
    assert scores["intent_accuracy"] == pytest.approx(
        gold.count("atis_flight#atis_airfare") / len(gold))


def test_chunk_starts_are_where_conlleval_begins_a_chunk():
    tags = ["O", "B-a", "I-a", "I-b", "B-b", "E-a", "I-a"]
    starts = ChunkStarts(tags)
    kinds = {}
    for tag in tags:
        for kind, _, _ in extract_spans([tag]):
            kinds.setdefault(kind, starts.kinds[tags.index(tag)].item())
    rng = random.Random(0)
    for _ in range(50):
        ids = [rng.randrange(len(tags)) for _ in range(9)]
        expected = [starts.none] * 9
        for kind, start, _ in extract_spans([tags[i] for i in ids]):
            expected[start] = kinds[kind]
        assert starts.hints(torch.tensor([ids]), None)[0].tolist() == expected
    mask = torch.tensor([[True, True, False]])
    assert starts.hints(torch.tensor([[1, 2, 1]]), mask)[0, 2] == starts.none


def test_refinement_reads_the_first_pass_and_trains_both_passes():
    cfg = load_config(CONFIGS / "joint.yaml", [*tiny_overrides(), "model.refine=true"])
    prepared = prepare(cfg)
    torch.manual_seed(0)
    model = build_model(cfg.model, prepared.vocabs).eval()
    batch = make_batch(encode_split(prepared.corpus["train"][:8], prepared.vocabs,
                                    labels=True), torch.arange(8))
    with torch.no_grad():
        first = model.read_pass(batch)
        hints = model.hints(first, batch)
        second = model.read_pass(batch, hints)
        assert (hints != model.refine.none).any()  # the first pass found chunks
        assert not torch.allclose(first[0], second[0])
        torch.testing.assert_close(model.read(batch)[0], second[0])
        both = model.pass_loss(first, batch) + model.pass_loss(second, batch)
        torch.testing.assert_close(model.loss(batch), both)


def test_the_slot_reading_intent_head_reads_the_tag_scores():
    cfg = load_config(CONFIGS / "joint.yaml", [*tiny_overrides(), "model.intent_reads_slots=true"])
    prepared = prepare(cfg)
    model = build_model(cfg.model, prepared.vocabs).eval()
    batch = make_batch(encode_split(prepared.corpus["valid"][:4], prepared.vocabs),
                       torch.arange(4))
    before = model.outputs(batch)[1]
    with torch.no_grad():
        model.head.linear.bias[1] += 20.0  # every word now leans to one tag
    assert not torch.allclose(model.outputs(batch)[1], before)


def test_option_combinations_are_checked():
    with pytest.raises(ConfigError) as info:
        Config.from_dict({"model": {"multi_intent": True, "intent_threshold": 0.3}})
    assert "model.multi_intent: applies only with model.intent true" in info.value.detail
    with pytest.raises(ConfigError) as info:
        Config.from_dict({"model": {"intent": True, "intent_threshold": 0.3,
                                    "intent_reads_slots": True, "intent_to_slots": True}})
    assert "model.intent_threshold: applies only with model.multi_intent" in info.value.detail
    assert "cannot read the tags while the tags read the intent" in info.value.detail
    with pytest.raises(ConfigError, match="seq2seq decoder's tag scores"):
        Config.from_dict({"model": {"type": "seq2seq", "intent": True,
                                    "intent_reads_slots": True}})


def test_a_checkpoint_from_before_these_options_loads_and_tags_the_same(tmp_path):
    """Checkpoints written before multi_intent, intent_reads_slots and refine have no such
    keys: they load as single-label, one-pass models with the same weights and tags."""
    from slotfill.models.checkpoint import save_checkpoint

    cfg = load_config(CONFIGS / "joint.yaml", [*tiny_overrides(), "model.refine=false"])
    vocabs = prepare(cfg).vocabs
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "new.pt", build_model(cfg.model, vocabs), cfg, vocabs, {})
    payload = torch.load(tmp_path / "new.pt", weights_only=True)
    for key in ("multi_intent", "intent_threshold", "intent_reads_slots", "refine"):
        del payload["config"]["model"][key]
    torch.save(payload, tmp_path / "old.pt")
    old = evaluate_checkpoint(tmp_path / "old.pt", split="test")
    new = evaluate_checkpoint(tmp_path / "new.pt", split="test")
    assert old.predictions.tags == new.predictions.tags
    assert old.predictions.intents == new.predictions.intents
    assert old.scores == new.scores


def test_refined_multi_intent_runs_train_predict_and_form_ensembles(tmp_path):
    (tmp_path / "corpus").mkdir()
    corpus = mixed_corpus(tmp_path / "corpus")
    runs = []
    for seed in (1, 2):
        cfg = load_config(CONFIGS / "joint.yaml", [
            *tiny_overrides(epochs=2), f"data.path={corpus}", f"train.seed={seed}",
            "model.multi_intent=true", "model.refine=true", "model.intent_reads_slots=true"])
        runs.append(tmp_path / f"run{seed}")
        runs[-1].mkdir()
        train(cfg, runs[-1])
    result = Predictor(runs[0] / "best.pt").predict(["flights from boston to denver"])[0]
    assert result["intent"] and 0.0 < result["intent_confidence"] <= 1.0
    ensemble = build_ensemble(runs, tmp_path / "ensemble")
    assert "intent_string_accuracy" in ensemble.test
    single = load_config(CONFIGS / "joint.yaml", [*tiny_overrides(), f"data.path={corpus}"])
    (tmp_path / "single").mkdir()
    train(single, tmp_path / "single")
    with pytest.raises(CheckpointError, match="multi_intent False, but"):
        build_ensemble([runs[0], tmp_path / "single"], tmp_path / "mixed")


def test_export_refuses_what_its_graphs_do_not_cover_yet(tmp_path):
    pytest.importorskip("onnx")
    from slotfill.errors import SlotfillError
    from slotfill.serving.export import export_onnx

    cfg = load_config(CONFIGS / "joint.yaml", [*tiny_overrides(), "model.multi_intent=true"])
    vocabs = prepare(cfg).vocabs
    save_checkpoint(tmp_path / "best.pt", build_model(cfg.model, vocabs), cfg, vocabs, {})
    with pytest.raises(SlotfillError, match="cannot export models with model.multi_intent"):
        export_onnx(tmp_path / "best.pt", tmp_path / "model.onnx")
    assert not any(tmp_path.glob("model*"))
