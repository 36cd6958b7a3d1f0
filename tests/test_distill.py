"""Knowledge distillation (`slotfill distill`, the config's distill section): the soft
losses against their definitions and brute force, teachers' targets, unlabelled
utterances, the refusals, and a student that is an ordinary run."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from conftest import CONFIGS, TINY, tiny_overrides
from typer.testing import CliRunner

from slotfill.cli import app
from slotfill.config import load_config
from slotfill.data.corpus import Example
from slotfill.errors import ConfigError
from slotfill.models.crf import CRFHead, allowed_transitions
from slotfill.models.heads import SoftmaxHead
from slotfill.training.run import train

runner = CliRunner()
TAGS = ["O", "B-a", "I-a", "B-b", "I-b"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def random_crf(seed: int = 0) -> CRFHead:
    torch.manual_seed(seed)
    head = CRFHead(4, *allowed_transitions(TAGS))
    with torch.no_grad():
        for p in (head.transitions, head.start, head.end):
            p.normal_()
    return head


MASK = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)


def test_crf_marginals_match_brute_force_at_any_temperature():
    head = random_crf()
    scores = torch.randn(3, 4, len(TAGS))
    trans, start = head._trans()
    end = head._end()
    for t in (1.0, 2.5):
        marginals = head.marginals(scores, MASK, t)
        for row in range(3):
            n = int(MASK[row].sum())
            expected, total = torch.zeros(n, len(TAGS)), 0.0
            for seq in itertools.product(range(len(TAGS)), repeat=n):
                score = start[seq[0]] + scores[row, 0, seq[0]] + end[seq[-1]] + sum(
                    trans[seq[i - 1], seq[i]] + scores[row, i, seq[i]] for i in range(1, n))
                p = torch.exp(score / t)
                total += p
                for i, k in enumerate(seq):
                    expected[i, k] += p
            assert torch.allclose(marginals[row, :n], expected / total, atol=1e-5)
            assert marginals[row, n:].abs().sum() == 0


def test_crf_soft_loss_of_one_hot_targets_is_the_nll_and_its_gradient_the_marginals():
    head = random_crf(1)
    scores = torch.randn(3, 4, len(TAGS), requires_grad=True)
    gold = torch.tensor([[1, 2, 0, 3], [0, 3, 4, 0], [1, 2, 0, 0]])
    one_hot = torch.nn.functional.one_hot(gold, len(TAGS)).float() * MASK.unsqueeze(2)
    weight = torch.ones(3)
    assert head.soft_loss(scores, one_hot, MASK, weight).item() == pytest.approx(
        head.nll(scores, gold, MASK).item(), abs=1e-5)
    targets = torch.softmax(torch.randn(3, 4, len(TAGS)), -1) * MASK.unsqueeze(2)
    head.soft_loss(scores, targets, MASK, weight).backward()
    expected = (head.marginals(scores, MASK) - targets) / MASK.sum()
    assert torch.allclose(scores.grad, expected, atol=1e-6)
    # a zero weight removes an utterance
    alone = head.soft_loss(scores[:1], targets[:1], MASK[:1], weight[:1]) * MASK[0].sum()
    dropped = head.soft_loss(scores, targets, MASK, torch.tensor([1.0, 0.0, 0.0])) * MASK.sum()
    assert dropped.item() == pytest.approx(alone.item(), rel=1e-5)


def test_softmax_and_intent_soft_losses_are_cross_entropies():
    from slotfill.models.intent import IntentHead

    head = SoftmaxHead(4, len(TAGS))
    scores = torch.randn(3, 4, len(TAGS))
    gold = torch.randint(len(TAGS), (3, 4))
    one_hot = torch.nn.functional.one_hot(gold, len(TAGS)).float() * MASK.unsqueeze(2)
    expected = torch.nn.functional.cross_entropy(scores[MASK], gold[MASK])
    assert head.soft_loss(scores, one_hot, MASK, torch.ones(3)).item() == pytest.approx(
        expected.item(), rel=1e-5)
    intents = IntentHead(4, ["a", "b", "c"])
    logits, labels = torch.randn(3, 3), torch.tensor([0, 2, 1])
    targets = torch.nn.functional.one_hot(labels, 3).float()
    assert intents.soft_loss(logits * 2, targets, None, torch.ones(3), 2.0).item() == \
        pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-5)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("teacher")
    train(load_config(CONFIGS / "joint.yaml", tiny_overrides(4) + [
        "train.lr=0.01", "train.ema=0"]), run)
    return run


def test_distill_trains_a_student_that_is_an_ordinary_run(teacher_run, tmp_path):
    unlabeled = tmp_path / "unlabeled.txt"
    unlabeled.write_text("fly from zanzibar to boston\n\nshow me flights to zanzibar\n")
    student = tmp_path / "student"
    result = invoke("distill", "bilstm-crf", *tiny_overrides(2), "model.intent=true",
                    "--teacher", teacher_run, "--unlabeled", unlabeled,
                    "--temperature", "2", "--output", student)
    assert result.exit_code == 0, result.output
    config = (student / "config.yaml").read_text()
    assert f"teachers: {teacher_run}" in config and "temperature: 2.0" in config
    from slotfill.models.checkpoint import load_checkpoint
    ckpt = load_checkpoint(student / "best.pt")
    assert "zanzibar" in ckpt.vocabs.words.itos  # only the unlabelled text has it
    assert "distill" in result.output  # the summary names the teachers
    result = invoke("predict", "--model", student, "--json", "fly to denver")
    assert result.exit_code == 0 and json.loads(result.stdout)["intent"]
    pytest.importorskip("onnxruntime")
    result = invoke("export", "--model", student, "--output", tmp_path / "s.onnx")
    assert result.exit_code == 0, result.output


def test_unlabelled_utterances_join_with_the_teachers_best_answer(teacher_run, tmp_path):
    from slotfill.training.prepare import prepare

    unlabeled = tmp_path / "u.txt"
    unlabeled.write_text("i want to fly from boston to denver on monday\n")
    cfg = load_config(CONFIGS / "bilstm-crf.yaml", tiny_overrides() + [
        "model.intent=true", f"distill.teachers={teacher_run}",
        f"distill.unlabeled={unlabeled}"])
    prepared = prepare(cfg)
    train_split = prepared.corpus["train"]
    added = train_split[-1]
    assert added.tokens[:3] == ("i", "want", "to") and added.intent
    from slotfill.data.bio import extract_spans, spans_to_tags
    assert list(added.tags) == spans_to_tags(extract_spans(added.tags), len(added.tags))
    targets = prepared.distillation.targets
    assert len(targets.tags) == len(train_split)
    for tags, example in zip(targets.tags, train_split):
        assert tags.shape == (len(example.tokens), len(prepared.vocabs.tags))
        assert torch.allclose(tags.sum(1), torch.ones(len(example.tokens)), atol=1e-4)
    # the gold-labelled ones: the teacher's distribution mostly agrees with the labels
    best = [prepared.vocabs.tags.itos[k] for t in targets.tags[:-1] for k in t.argmax(1)]
    gold = [t for e in train_split[:-1] for t in e.tags]
    assert sum(b == g for b, g in zip(best, gold)) / len(gold) > 0.5


def test_substituted_utterances_learn_from_their_labels_alone():
    from slotfill.training.distill import SoftTargets, Targets

    examples = [Example(("fly", "to", "boston"), ("O", "O", "B-a")),
                Example(("fly", "home"), ("O", "O"))]
    soft = SoftTargets(examples, Targets([torch.full((3, 2), 0.5), torch.full((2, 2), 0.5)],
                                         None))
    from slotfill.data.batching import EncodedSplit
    split = EncodedSplit(torch.ones(2, 4, dtype=torch.long), torch.tensor([4, 2]))
    rewritten = Example(("fly", "to", "new", "york"), ("O", "O", "B-a", "I-a"))
    soft.attach(split, [rewritten, examples[1]])
    assert split.soft_weight.tolist() == [0.0, 1.0]
    assert split.soft_tags[1, :2].float().sum().item() == pytest.approx(2.0)


def test_teachers_with_other_tags_are_refused_with_the_difference(teacher_run, tmp_path):
    corpus = tmp_path / "corpus"
    for split in ("train", "valid", "test"):
        (corpus / split).mkdir(parents=True)
        for name in ("seq.in", "label"):
            (corpus / split / name).write_text((TINY / split / name).read_text())
        text = (TINY / split / "seq.out").read_text()
        (corpus / split / "seq.out").write_text(text.replace("toloc.city_name", "to.city"))
    with pytest.raises(ConfigError) as info:
        from slotfill.training.prepare import prepare
        prepare(load_config(CONFIGS / "bilstm-crf.yaml", tiny_overrides() + [
            f"data.path={corpus}", f"distill.teachers={teacher_run}"]))
    assert "cannot teach this student" in info.value.title
    assert "lacks B-to.city" in info.value.detail
    assert "B-toloc.city_name" in info.value.detail


def test_distill_usage_errors(teacher_run):
    result = invoke("distill", "bilstm-crf")
    assert result.exit_code != 0 and "No teacher given" in result.output
    with pytest.raises(ConfigError) as info:
        load_config(CONFIGS / "bilstm.yaml", ["distill.alpha=0.3"])
    assert "distill.alpha: applies only with distill.teachers" in info.value.detail
    with pytest.raises(ConfigError) as info:
        load_config(CONFIGS / "seq2seq.yaml", [f"distill.teachers={teacher_run}"])
    assert "seq2seq decoder" in info.value.detail
