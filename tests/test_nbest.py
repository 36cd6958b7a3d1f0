"""n-best answers: k-best Viterbi against brute-force enumeration of every tag sequence,
then through Predictor, Tagger.predict, `slotfill predict --n-best` and POST /predict."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
from conftest import CONFIGS, TINY, tiny_overrides
from typer.testing import CliRunner

from slotfill.cli import app
from slotfill.config import load_config
from slotfill.data.batching import encode_split, make_batch
from slotfill.data.corpus import Example
from slotfill.errors import UsageError
from slotfill.models.checkpoint import load_checkpoint
from slotfill.models.crf import CRFHead, allowed_transitions, k_best_viterbi, without_forbidden
from slotfill.models.posteriors import best_path, n_best
from slotfill.serving.predict import Predictor
from slotfill.training.run import train

TAGS = ["O", "B-a", "I-a", "B-b", "I-b"]
runner = CliRunner()


def random_head(seed: int = 0) -> CRFHead:
    torch.manual_seed(seed)
    head = CRFHead(3, *allowed_transitions(TAGS))
    with torch.no_grad():
        for p in (head.transitions, head.start, head.end):
            p.normal_()
    return head


def enumerate_sequences(emissions, trans, start, end):
    """Every sequence of one utterance (T, K) whose potentials are all finite, with its
    score, best first."""
    T, K = emissions.shape
    found = []
    for seq in itertools.product(range(K), repeat=T):
        s = start[seq[0]] + end[seq[-1]] + sum(emissions[t, y] for t, y in enumerate(seq))
        s = s + sum(trans[a, b] for a, b in zip(seq, seq[1:]))
        if torch.isfinite(s):
            found.append((float(s), seq))
    return sorted(found, reverse=True)


@pytest.mark.parametrize("lengths", [[1], [3], [4, 2, 1], [2, 4, 3]])
@pytest.mark.parametrize("n", [1, 4, 40])
def test_k_best_viterbi_is_the_top_of_the_enumeration(lengths, n):
    """Distinct, sorted, each score right, padding ignored, no sequence the scheme
    forbids; with n beyond the sequences there are, the rest score -inf."""
    head = random_head()
    trans, start, end = (p.detach().double() for p in without_forbidden(*head.potentials()))
    B, T, K = len(lengths), max(lengths), len(TAGS)
    torch.manual_seed(1)
    emissions = torch.randn(B, T, K, dtype=torch.float64)
    mask = torch.arange(T) < torch.tensor(lengths).unsqueeze(1)
    tags, scores = k_best_viterbi(emissions, mask, trans, start, end, n)
    assert tags.shape == (B, n, T) and scores.shape == (B, n)
    for b, length in enumerate(lengths):
        expected = enumerate_sequences(emissions[b, :length], trans, start, end)[:n]
        got = [(float(s), tuple(row[:length])) for s, row
               in zip(scores[b].tolist(), tags[b].tolist()) if s > float("-inf")]
        assert len(got) == len(expected) == min(n, len(enumerate_sequences(
            emissions[b, :length], trans, start, end)))
        assert [seq for _, seq in got] == [seq for _, seq in expected]
        for (s, _), (e, _) in zip(got, expected):
            assert s == pytest.approx(e, abs=1e-9)
        assert len({seq for _, seq in got}) == len(got)  # distinct
        assert all(s == float("-inf") for s in scores[b, len(got):].tolist())
        # past the length, each path repeats its last tag (as viterbi's)
        for row in tags[b, :len(got)].tolist():
            assert row[length:] == [row[length - 1]] * (T - length)


def test_one_best_is_viterbi_and_slices_of_rows_change_nothing(monkeypatch):
    import slotfill.models.crf as crf

    head = random_head(3)
    torch.manual_seed(2)
    emissions = torch.randn(7, 5, len(TAGS))
    mask = torch.arange(5) < torch.tensor([5, 3, 1, 4, 5, 2, 2]).unsqueeze(1)
    potentials = head.potentials()
    one, _ = k_best_viterbi(emissions, mask, *without_forbidden(*potentials), 1)
    assert torch.equal(one[:, 0], crf.viterbi(emissions, mask, *potentials))
    whole = k_best_viterbi(emissions, mask, *without_forbidden(*potentials), 6)
    monkeypatch.setattr(crf, "K_BEST_BUDGET", 1)  # one row at a time
    sliced = k_best_viterbi(emissions, mask, *without_forbidden(*potentials), 6)
    assert torch.equal(whole[0], sliced[0]) and torch.equal(whole[1], sliced[1])
    with pytest.raises(ValueError, match="at least 1"):
        k_best_viterbi(emissions, mask, *potentials, 0)


class FixedScores(torch.nn.Module):
    """A stand-in tagger whose tag scores are given: what posteriors.n_best reads."""

    def __init__(self, head, emissions) -> None:
        super().__init__()
        self.head, self.emissions = head, emissions

    def outputs(self, batch):
        return self.emissions, None


def batch_of_lengths(lengths):
    from slotfill.data.batching import Batch

    T = max(lengths)
    mask = torch.arange(T) < torch.tensor(lengths).unsqueeze(1)
    return Batch(mask.long(), torch.tensor(lengths), None if mask.all() else mask,
                 torch.arange(len(lengths)))


@pytest.mark.parametrize("kind", ["crf", "softmax"])
def test_n_best_probabilities_match_the_enumeration(kind):
    """A CRF's probabilities are exp(score - log Z) over every sequence; a softmax head's
    the product of the words' probabilities. Listing every allowed sequence sums to 1
    (a CRF: but for the forbidden ones' e^-10000)."""
    from slotfill.models.heads import SoftmaxHead

    lengths = [3, 1, 2]
    torch.manual_seed(4)
    emissions = torch.randn(3, 3, len(TAGS)) * 2
    batch = batch_of_lengths(lengths)
    if kind == "crf":
        head = random_head(5)
        trans, start, end = head.potentials()
    else:
        head = SoftmaxHead(3, len(TAGS))
        emissions = emissions.log_softmax(-1)
        trans, start, end = torch.zeros(len(TAGS), len(TAGS)), *torch.zeros(2, len(TAGS))
    model = FixedScores(head, emissions)
    tags, log_probs = n_best(model, batch, 200)
    best_tags, best_log_p, _ = best_path(model, batch)
    for b, length in enumerate(lengths):
        every = enumerate_sequences(emissions[b, :length].double(), trans.detach().double(),
                                    start.detach().double(), end.detach().double())
        log_z = torch.logsumexp(torch.tensor([s for s, _ in every]), 0)
        allowed = every if kind == "softmax" else enumerate_sequences(
            emissions[b, :length].double(),
            *(p.detach().double() for p in without_forbidden(trans, start, end)))
        got = [(math.exp(p), tuple(row[:length])) for p, row
               in zip(log_probs[b].tolist(), tags[b].tolist()) if p > float("-inf")]
        assert [seq for _, seq in got] == [seq for _, seq in allowed[:200]]
        for (p, _), (s, _) in zip(got, allowed):
            assert p == pytest.approx(math.exp(s - log_z), rel=1e-4, abs=1e-7)
        total = sum(p for p, _ in got)
        assert total <= 1 + 1e-5 and total == pytest.approx(1, abs=1e-4)
        assert got[0][1] == tuple(best_tags[b, :length].tolist())
        assert math.log(got[0][0]) == pytest.approx(float(best_log_p[b]), abs=1e-5)


# ------------------------------------------------------------ trained models

TEXTS = [line for line in (TINY / "test" / "seq.in").read_text().splitlines()[:6]] + [
    "leave boston", "Denver", "", "   "]


@pytest.fixture(scope="module")
def seq2seq_run(tmp_path_factory):
    cfg = load_config(CONFIGS / "seq2seq.yaml", tiny_overrides(epochs=1))
    run_dir = tmp_path_factory.mktemp("seq2seq")
    train(cfg, run_dir)
    return run_dir


@pytest.fixture(scope="module")
def ensemble_run(trained_intent_run, tmp_path_factory):
    from slotfill.training.ensemble import build_ensemble

    out = tmp_path_factory.mktemp("ensemble") / "ens"
    build_ensemble([trained_intent_run, trained_intent_run], out)
    return out


def close(a, b) -> bool:
    """The same JSON-like values, floats to 1e-6."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    return a == b


def check_lists(results, n):
    """Each result's n-best list: distinct, sorted, summing to at most 1, led by the
    answer (its tags and its slots, confidences included)."""
    for result in results:
        found = result["n_best"]
        assert 1 <= len(found) <= n
        probabilities = [a["probability"] for a in found]
        assert probabilities == sorted(probabilities, reverse=True)
        assert all(0 < p <= 1 for p in probabilities) and sum(probabilities) <= 1
        assert len({tuple(a["tags"]) for a in found}) == len(found)
        assert found[0]["tags"] == result["tags"] and found[0]["slots"] == result["slots"]
        for alternative in found:
            assert len(alternative["tags"]) == len(result["tokens"])
            for slot in alternative["slots"]:
                assert result["text"][slot["start"]:slot["end"]] == slot["value"]


@pytest.mark.parametrize("which", ["crf", "softmax", "ensemble"])
def test_the_first_alternative_is_the_answer(which, trained_run, trained_intent_run,
                                             ensemble_run):
    run = {"crf": trained_intent_run, "softmax": trained_run, "ensemble": ensemble_run}[which]
    predictor = Predictor(run / "best.pt")
    plain = predictor.predict(TEXTS)
    results = predictor.predict(TEXTS, n_best=5)
    assert [{k: v for k, v in r.items() if k != "n_best"} for r in results] == plain
    check_lists(results, 5)
    for result in results[-2:]:  # without words: the one empty sequence
        assert result["n_best"] == [{"probability": 1.0, "tags": [], "slots": []}]
    # a larger n lists the same sequences first
    more = predictor.predict(TEXTS, n_best=9)
    for five, nine in zip(results, more):
        assert [a["tags"] for a in nine["n_best"][:5]] == [a["tags"] for a in five["n_best"]]


@pytest.mark.parametrize("which", ["crf", "softmax"])
def test_a_trained_models_list_matches_the_enumeration(which, trained_run, trained_intent_run):
    """Every sequence of a three-word utterance, scored by brute force from the model's
    own scores: the listed ones are its most probable, with their probabilities; a
    one-word utterance lists fewer than asked, every tag that may stand alone."""
    run = trained_intent_run if which == "crf" else trained_run
    predictor = Predictor(run / "best.pt")
    model, vocabs = predictor.model, predictor.vocabs
    words = ("flights", "to", "boston")
    split = encode_split([Example(words, ())], vocabs)
    scores, _ = model.outputs(make_batch(split, torch.arange(1)))
    e = scores[0].double().detach()  # (3, K)
    if which == "crf":
        trans, start, end = (p.detach().double() for p in model.head.potentials())
    else:
        e = e.log_softmax(-1)
        trans, start, end = torch.zeros(e.size(1), e.size(1)), *torch.zeros(2, e.size(1))
    every = (start + e[0])[:, None, None] + trans[:, :, None] + e[1][None, :, None] \
        + trans[None] + (e[2] + end)[None, None]  # (K, K, K)
    log_z = torch.logsumexp(every.flatten(), 0)
    if which == "crf":  # what the scheme forbids is not listed
        ok, fine = start > -5000, trans > -5000
        allowed = ok[:, None, None] & fine[:, :, None] & fine[None] & (end > -5000)[None, None]
        every = every.masked_fill(~allowed, float("-inf"))
    top, at = every.flatten().topk(12)
    K = e.size(1)
    expected = [vocabs.tags.decode([i // (K * K), i // K % K, i % K]) for i in at.tolist()]
    found = predictor.predict([" ".join(words)], n_best=12)[0]["n_best"]
    assert [a["tags"] for a in found] == expected
    for alternative, score in zip(found, top.tolist()):
        assert alternative["probability"] == pytest.approx(math.exp(score - log_z), rel=1e-4)
    alone = predictor.predict(["boston"], n_best=500)[0]["n_best"]
    possible = K if which == "softmax" else int(((start > -5000) & (end > -5000)).sum())
    assert len(alone) == possible < 500
    assert sum(a["probability"] for a in alone) == pytest.approx(1, abs=1e-4)


# ------------------------------------------------------------ the faces

def test_tagger_predict_gives_typed_alternatives(trained_intent_run):
    import slotfill

    model = slotfill.load(trained_intent_run)
    result = model.predict("flights from boston to denver", n_best=3)[0]
    assert isinstance(result.n_best[0], slotfill.Alternative)
    assert result.n_best[0].tags == result.tags and result.n_best[0].slots == result.slots
    assert slotfill.Result.from_dict(result.to_dict()) == result
    assert model.predict(["leave boston"])[0].n_best is None  # only when asked
    # an iterator streams them too, and so do worker processes, in order
    lines = [f"fly to {city}" for city in ("boston", "denver", "atlanta")]
    streamed = list(model.predict(iter(lines), n_best=2))
    assert [r.to_dict() for r in streamed] == [r.to_dict() for r in model.predict(lines,
                                                                                 n_best=2)]
    assert [r.to_dict() for r in model.predict(iter(lines), n_best=2, workers=2)] == \
        [r.to_dict() for r in streamed]
    for bad, message in ((0, "n_best must be at least 1, not 0"),
                         (True, "n_best must be a whole number"),
                         (2.0, "n_best must be a whole number")):
        with pytest.raises(UsageError, match=message):
            model.predict(iter(lines), n_best=bad)  # at once, not on the first result


def test_a_seq2seq_model_says_it_has_no_n_best(seq2seq_run):
    import slotfill

    with pytest.raises(UsageError, match="n-best lists need a CRF or softmax tag head"):
        slotfill.load(seq2seq_run).predict(["leave boston"], n_best=2)
    result = runner.invoke(app, ["predict", "--model", str(seq2seq_run), "--n-best", "2",
                                 "leave boston"])
    assert result.exit_code == 2 and "beam search" in result.stderr
    assert "Traceback" not in result.output


def test_predict_n_best_in_jsonl_and_the_table(trained_intent_run, tmp_path):
    texts = ["flights from boston to denver", "leave boston"]
    result = runner.invoke(app, ["predict", "--model", str(trained_intent_run), "--json",
                                 "--n-best", "3", *texts])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    check_lists(records, 3)
    assert all("intent" in r and "intent" not in r["n_best"][0] for r in records)
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n\n")
    result = runner.invoke(app, ["predict", "--model", str(trained_intent_run), "--file",
                                 str(tmp_path / "in.txt"), "--n-best", "2"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("2 most probable tag sequences (after the first") == 2
    first, second = records[1]["n_best"][:2]
    shown = ", ".join(f"{s['slot']} = {s['value']}" for s in first["slots"]) or "(no slots)"
    assert f"1. {first['probability']:.3f}  {shown}\n" in result.stdout
    # the second as it differs from the first: its slots the first lacks
    def key(slot):
        return slot["slot"], slot["start"], slot["end"]
    added = [f"{s['slot']} = {s['value']}" for s in second["slots"]
             if key(s) not in {key(f) for f in first["slots"]}]
    assert f"2. {second['probability']:.3f}  {added[0] if added else ''}" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--n-best", "0"], "--n-best must be at least 1, not 0"),
    (["--n-best", "-2"], "--n-best must be at least 1, not -2"),
    (["--n-best", "2", "--format", "tsv"], "--n-best and --format tsv do not fit together"),
])
def test_predict_refuses_a_bad_n_best_clearly(trained_run, args, message):
    result = runner.invoke(app, ["predict", "--model", str(trained_run), *args, "a b"])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output
    assert result.stdout == ""


def test_serve_answers_n_best_and_refuses_bad_values(trained_intent_run, seq2seq_run):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    from slotfill.serving.serve import Limits, create_app

    predictor = Predictor(trained_intent_run / "best.pt")
    app_ = create_app(predictor, Limits(max_n_best=6))
    client = TestClient(app_)

    def post(body):
        return client.post("/predict", content=json.dumps(body).encode(),
                           headers={"content-type": "application/json"})

    text = "flights from boston to denver"
    one = post({"text": text, "n_best": 4})
    assert one.status_code == 200, one.text
    assert one.json() == predictor.predict([text], n_best=4)[0]
    check_lists([one.json()], 4)
    many = post({"texts": [text, ""], "n_best": 2}).json()
    assert [r["n_best"] for r in many] == [one.json()["n_best"][:2],
                                           [{"probability": 1.0, "tags": [], "slots": []}]]
    assert "n_best" not in post({"text": text}).json()
    for bad, fragment in ((0, '"n_best" must be at least 1, not 0'),
                          (True, '"n_best" must be a whole number, not True'),
                          ("3", '"n_best" must be a whole number'),
                          (2.5, '"n_best" must be a whole number'),
                          (7, '"n_best" is 7; the limit is 6')):
        response = post({"text": text, "n_best": bad})
        assert response.status_code == 422 and fragment in response.json()["error"]
        assert "\n" not in response.json()["error"]
    response = post({"n_best": 2})
    assert response.status_code == 422 and "exactly one of" in response.json()["error"]
    # requests sharing a pass: each gets its own n, the answer without one none
    tokens = predictor.tokenize(text)
    shared = app_.state.batcher.run([(text, tokens, None), (text, tokens, 2),
                                     ("leave boston", predictor.tokenize("leave boston"), 5)])
    assert "n_best" not in shared[0] and shared[1]["n_best"] == one.json()["n_best"][:2]
    # the same as alone, but for float rounding (the confidences of a batch's spans)
    assert close(shared[2], predictor.predict(["leave boston"], n_best=5)[0])
    seq2seq = TestClient(create_app(Predictor(seq2seq_run / "best.pt"), Limits()))
    response = seq2seq.post("/predict", content=json.dumps({"text": text, "n_best": 2}),
                            headers={"content-type": "application/json"})
    assert response.status_code == 422 and "CRF or softmax" in response.json()["error"]
