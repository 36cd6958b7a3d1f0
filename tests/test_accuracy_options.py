"""The accuracy options: self-attention, word-level intent fed to the tag layer, weight
averaging, label smoothing; and exact resume of runs that use them."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from conftest import CONFIGS, longer_tiny_corpus, tiny_overrides

from slotfill.config import Config, load_config
from slotfill.data.batching import encode_split, make_batch
from slotfill.errors import ConfigError
from slotfill.models.attention import SelfAttention
from slotfill.models.intent import IntentHead
from slotfill.training.averaging import WeightAverage
from slotfill.training.events import TrainingLogger
from slotfill.training.run import TrainingInterrupted, resume, train


def test_attention_never_reads_padding_and_matches_a_plain_computation():
    torch.manual_seed(0)
    layer = SelfAttention(8, 2)
    x = torch.randn(2, 5, 8)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    out = layer(x, mask)
    changed = x.clone()
    changed[1, 3:] = 100.0  # padding: must not matter
    torch.testing.assert_close(layer(changed, mask)[1, :3], out[1, :3])
    q, k, v = layer.query(x[1, :3]), layer.key(x[1, :3]), layer.value(x[1, :3])
    heads = [torch.softmax(q[:, h * 4:(h + 1) * 4] @ k[:, h * 4:(h + 1) * 4].T / 2, -1)
             @ v[:, h * 4:(h + 1) * 4] for h in range(2)]
    torch.testing.assert_close(out[1, :3], layer.out(torch.cat(heads, 1)))


def test_word_level_intent_is_the_mean_vote_of_the_real_words():
    head = IntentHead(3, ["a", "b", "c", "d"], per_token=True)
    scores = torch.randn(2, 3, 4)
    mask = torch.tensor([[True, True, True], [True, False, False]])
    probs = head.probabilities(scores, mask)
    torch.testing.assert_close(probs[1], scores[1, 0].softmax(-1))
    torch.testing.assert_close(probs[0], scores[0].softmax(-1).mean(0))
    loss = head.loss(scores, torch.tensor([1, 2]), mask)
    expected = torch.nn.functional.cross_entropy(
        torch.cat([scores[0], scores[1, :1]]), torch.tensor([1, 1, 1, 2]))
    torch.testing.assert_close(loss, expected)


def test_intent_options_need_an_intent_and_heads_must_divide_the_states():
    with pytest.raises(ConfigError) as info:
        Config.from_dict({"model": {"intent_to_slots": True, "intent_level": "token",
                                    "attention_heads": 3, "hidden_size": 10}})
    assert "model.intent_to_slots: applies only with model.intent" in info.value.detail
    assert "model.intent_level: applies only with model.intent" in info.value.detail
    assert "must divide the encoder's output size (10" in info.value.detail
    with pytest.raises(ConfigError, match="left-to-right Jordan"):
        Config.from_dict({"model": {"type": "jordan", "attention_heads": 2}})


def test_the_tag_layer_reads_the_intent_distribution():
    cfg = load_config(CONFIGS / "joint.yaml", [*tiny_overrides(), "model.intent_to_slots=true"])
    from slotfill.training.prepare import prepare
    prepared = prepare(cfg)
    from slotfill.models import build_model
    model = build_model(cfg.model, prepared.vocabs).eval()
    intents = len(prepared.vocabs.intents)
    assert model.head.linear.in_features == 2 * 16 + intents
    batch = make_batch(encode_split(prepared.corpus["valid"][:3], prepared.vocabs),
                       torch.arange(3))
    before = model.scores(batch)
    with torch.no_grad():
        model.intent_head.linear.bias[0] += 50.0  # another intent distribution
    assert not torch.allclose(model.scores(batch), before)


def test_weight_average_follows_the_formula_and_swaps_back():
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    average = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    average.update()  # step 1: d = min(0.9, 2 / 11)
    expected = 1 - 2 / 11
    with average.swapped_in() as averaged:
        torch.testing.assert_close(averaged.weight, torch.full((1, 2), expected))
    torch.testing.assert_close(model.weight, torch.ones(1, 2))


def test_label_smoothing_reaches_the_losses():
    cfg = load_config(CONFIGS / "seq2seq.yaml", tiny_overrides())
    from slotfill.training.prepare import prepare
    from slotfill.training.trainer import Trainer
    smooth = Trainer(load_config(CONFIGS / "seq2seq.yaml", [*tiny_overrides(),
                                                            "train.label_smoothing=0.2"]),
                     prepare(cfg))
    assert smooth.model.head.label_smoothing == 0.2
    assert smooth.model.intent_head.label_smoothing == 0.2
    batch = make_batch(smooth.data, torch.arange(4))
    plain = smooth.model.loss(batch).item()
    smooth.model.set_label_smoothing(0.0)
    assert smooth.model.loss(batch).item() != plain


class InterruptMidEpoch(TrainingLogger):
    """Sends this process SIGINT halfway through an epoch (an in-process Ctrl-C)."""

    def __init__(self, epoch: int) -> None:
        self.stop_in = epoch

    def step(self, step) -> None:
        if step.phase == "train" and step.epoch == self.stop_in and step.done == step.total // 2:
            os.kill(os.getpid(), signal.SIGINT)


def test_a_run_with_averaging_and_augmentation_resumes_exactly(tmp_path):
    """train.ema and train.augment keep their state in last.pt: a run stopped in the
    middle of an epoch and resumed ends exactly like the run left alone."""
    (tmp_path / "corpus").mkdir()
    corpus = longer_tiny_corpus(tmp_path / "corpus", times=3)
    cfg = load_config(CONFIGS / "joint.yaml", [
        *tiny_overrides(epochs=3), f"data.path={corpus}", "train.patience=0",
        "train.ema=0.9", "train.augment=0.5",
        "data.gazetteers={city_name: city_name, month_name: month_name}"])
    for name in ("alone", "stopped"):
        (tmp_path / name).mkdir()
    alone = train(cfg, tmp_path / "alone")
    with pytest.raises(TrainingInterrupted):
        train(cfg, tmp_path / "stopped", loggers=[InterruptMidEpoch(2)])
    resumed = resume(tmp_path / "stopped")
    assert resumed.dev == alone.dev and resumed.test == alone.test
    read = lambda d: json.loads((d / "metrics.json").read_text())  # noqa: E731
    assert read(tmp_path / "stopped") == read(tmp_path / "alone")
    from slotfill.models.checkpoint import load_checkpoint
    for name in ("best.pt", "last.pt"):  # bit for bit
        ours, theirs = (load_checkpoint(tmp_path / run / name).model_state
                        for run in ("stopped", "alone"))
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    # best.pt holds the averaged weights, last.pt the trained ones
    best, last = (load_checkpoint(tmp_path / "alone" / f) for f in ("best.pt", "last.pt"))
    name = "embedder.words.weight"
    assert not torch.equal(best.model_state[name], last.model_state[name])



def test_selection_on_slot_f1_or_its_mean_with_intent_accuracy():
    from slotfill.training.run import selection_score
    scores = {"f1": 0.9, "intent_accuracy": 0.7}
    assert selection_score(scores, "f1") == 0.9
    assert selection_score(scores, "f1_intent") == pytest.approx(0.8)
    with pytest.raises(ConfigError, match="f1_intent needs model.intent"):
        Config.from_dict({"train": {"select": "f1_intent"}})
