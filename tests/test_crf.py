"""CRF against brute-force enumeration of every tag sequence on tiny inputs."""

from __future__ import annotations

import itertools

import pytest
import torch

from slotfill.models.crf import CRFHead, allowed_transitions

TAGS = ["O", "B-a", "I-a", "B-b", "I-b"]


def make_head(seed: int = 0, observed=()) -> CRFHead:
    torch.manual_seed(seed)
    head = CRFHead(3, *allowed_transitions(TAGS, observed))
    with torch.no_grad():
        for p in (head.transitions, head.start, head.end):
            p.normal_()
    return head


def brute_force(head: CRFHead, emissions: torch.Tensor):
    """All sequences of one utterance: (log partition, best sequence, scores by sequence)."""
    trans, start = head._trans()
    T, K = emissions.shape
    scores = {}
    for seq in itertools.product(range(K), repeat=T):
        s = start[seq[0]] + head.end[seq[-1]] + sum(emissions[t, y] for t, y in enumerate(seq))
        s = s + sum(trans[a, b] for a, b in zip(seq, seq[1:]))
        scores[seq] = s
    values = torch.stack(list(scores.values()))
    return torch.logsumexp(values, 0), max(scores, key=lambda k: scores[k]), scores


def test_bio_constraints():
    allowed, start, end = allowed_transitions(TAGS)
    i = {t: n for n, t in enumerate(TAGS)}
    assert end.all()  # BIO lets an utterance end with any tag
    assert not start[i["I-a"]] and start[i["B-a"]] and start[i["O"]]
    assert allowed[i["B-a"], i["I-a"]] and allowed[i["I-a"], i["I-a"]]
    assert not allowed[i["O"], i["I-a"]] and not allowed[i["B-b"], i["I-a"]]
    assert allowed[i["I-b"], i["B-a"]] and allowed[i["O"], i["O"]]
    # a transition the training data contains is allowed even if BIO forbids it
    allowed, start, _ = allowed_transitions(TAGS, [["I-b", "O", "I-a"]])
    assert start[i["I-b"]] and allowed[i["O"], i["I-a"]]


@pytest.mark.parametrize("lengths", [[1], [3], [4, 2, 1], [2, 4]])
def test_log_likelihood_and_viterbi_match_enumeration(lengths):
    head = make_head()
    B, T, K = len(lengths), max(lengths), len(TAGS)
    emissions = torch.randn(B, T, K)
    mask = torch.arange(T) < torch.tensor(lengths).unsqueeze(1)
    uniform = all(n == T for n in lengths)
    trans, start = head._trans()
    log_z = head.log_partition(emissions, None if uniform else mask, trans, start)
    best = head.viterbi(emissions, None if uniform else mask)
    gold = torch.randint(0, K, (B, T))
    gold_score = head.sequence_score(emissions, gold, None if uniform else mask, trans, start)
    for b, n in enumerate(lengths):
        expected_z, expected_best, scores = brute_force(head, emissions[b, :n])
        torch.testing.assert_close(log_z[b], expected_z, rtol=1e-5, atol=1e-4)
        assert tuple(best[b, :n].tolist()) == expected_best
        torch.testing.assert_close(gold_score[b], scores[tuple(gold[b, :n].tolist())])


def test_loss_is_mean_nll_per_token_and_never_nan():
    head = make_head()
    emissions = torch.randn(2, 3, len(TAGS), requires_grad=True)
    tags = torch.tensor([[1, 2, 0], [3, 0, 0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    loss = head.nll(emissions, tags, mask)
    trans, start = head._trans()
    nll = (head.log_partition(emissions, mask, trans, start)
           - head.sequence_score(emissions, tags, mask, trans, start))
    torch.testing.assert_close(loss, nll.sum() / 5)
    assert (nll > 0).all()
    loss.backward()
    assert torch.isfinite(emissions.grad).all() and torch.isfinite(head.transitions.grad).all()


def test_decoding_never_produces_a_forbidden_transition():
    head = make_head(seed=3)
    with torch.no_grad():
        head.transitions.zero_()
    emissions = torch.zeros(50, 6, len(TAGS))
    emissions[:, :, TAGS.index("I-a")] = 5.0  # strongly prefers I-a everywhere
    best = head.viterbi(emissions, None)
    allowed, start, _ = allowed_transitions(TAGS)
    for row in best.tolist():
        assert start[row[0]]
        assert all(allowed[a, b] for a, b in zip(row, row[1:]))


def reference_log_partition(scores, trans, start, end, lengths):
    """The textbook forward algorithm with logsumexp, differentiated by autograd."""
    out = []
    for b, n in enumerate(lengths):
        alpha = start + scores[b, 0]
        for t in range(1, n):
            alpha = torch.logsumexp(alpha.unsqueeze(1) + trans, dim=0) + scores[b, t]
        out.append(torch.logsumexp(alpha + end, dim=0))
    return torch.stack(out)


@pytest.mark.parametrize("lengths", [[5, 5, 5], [5, 2, 1, 4]])
def test_hand_written_gradients_match_autograd(lengths):
    from slotfill.models.crf import ForwardAlgorithm

    torch.manual_seed(1)
    head = make_head(seed=2)
    K, T = len(TAGS), max(lengths)
    mask = torch.arange(T) < torch.tensor(lengths).unsqueeze(1)
    leaves = [torch.randn(len(lengths), T, K, dtype=torch.float64) * 3,
              (head._trans()[0].detach().double()), head._trans()[1].detach().double(),
              torch.randn(K, dtype=torch.float64)]
    ours = [x.clone().requires_grad_() for x in leaves]
    theirs = [x.clone().requires_grad_() for x in leaves]
    upstream = torch.randn(len(lengths), dtype=torch.float64)
    uniform = all(n == T for n in lengths)
    value = ForwardAlgorithm.apply(*ours, None if uniform else mask)
    expected = reference_log_partition(*theirs, lengths)
    torch.testing.assert_close(value, expected)
    (value * upstream).sum().backward()
    (expected * upstream).sum().backward()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.grad, b.grad)


def test_inputs_are_checked_with_messages_that_say_what_was_expected():
    head = CRFHead(4, *allowed_transitions(["O", "B-a", "I-a"]))
    emissions, tags = torch.randn(2, 5, 3), torch.zeros(2, 5, dtype=torch.long)
    with pytest.raises(ValueError, match="emissions must have 3 dimensions .*, got 2"):
        head.viterbi(emissions[0], None)
    with pytest.raises(ValueError, match="last dimension of emissions is 3 .*, got 4"):
        head.nll(torch.randn(2, 5, 4), tags, None)
    with pytest.raises(ValueError, match=r"emissions and tags must match, got \(2, 5\) and "
                                         r"\(2, 4\)"):
        head.nll(emissions, tags[:, :4], None)
    with pytest.raises(ValueError, match="emissions and mask must match"):
        head.viterbi(emissions, torch.ones(5, 2, dtype=torch.bool))


BIOES = ["O", "B-a", "I-a", "E-a", "S-a", "B-b", "E-b", "S-b"]
BIOES_TRAIN = [["B-a", "I-a", "E-a", "O", "S-b"], ["S-a", "B-b", "E-b"]]


def test_bioes_constraints_cover_transitions_first_and_last_tags():
    allowed, start, end = allowed_transitions(BIOES, BIOES_TRAIN)
    i = {t: n for n, t in enumerate(BIOES)}
    assert allowed[i["B-a"], i["I-a"]] and allowed[i["B-a"], i["E-a"]]
    assert not allowed[i["B-a"], i["O"]] and not allowed[i["B-a"], i["S-a"]]
    assert not allowed[i["B-a"], i["E-b"]] and not allowed[i["O"], i["E-a"]]
    assert allowed[i["E-a"], i["B-b"]] and allowed[i["S-a"], i["S-a"]]
    assert not start[i["I-a"]] and not start[i["E-a"]] and start[i["S-b"]]
    assert end[i["E-a"]] and end[i["S-a"]] and end[i["O"]]
    assert not end[i["B-a"]] and not end[i["I-a"]]
    # IOB1, told by its sequences: I- may start a chunk, B- only follows its own type
    iob1 = ["O", "B-a", "I-a", "I-b"]
    allowed, start, end = allowed_transitions(iob1, [["I-a", "I-a", "B-a", "O", "I-b"]])
    assert start[iob1.index("I-a")] and not start[iob1.index("B-a")] and end.all()
    assert allowed[iob1.index("O"), iob1.index("I-b")]
    assert not allowed[iob1.index("I-b"), iob1.index("B-a")]


def test_bioes_decoding_and_likelihood_respect_the_scheme():
    from slotfill.data.bio import transition_problems
    torch.manual_seed(5)
    head = CRFHead(3, *allowed_transitions(BIOES, BIOES_TRAIN))
    with torch.no_grad():
        head.transitions.zero_()
    emissions = torch.randn(200, 4, len(BIOES)) * 3
    emissions[:, -1, BIOES.index("B-a")] += 10.0  # the last tag wants to open a chunk
    for row in head.viterbi(emissions, None).tolist():
        assert transition_problems([BIOES[k] for k in row], "bioes") == []
    # the forbidden last tags count in the partition function as in brute force
    one = emissions[:1, :3]
    trans, start = head._trans()
    sequences = itertools.product(range(len(BIOES)), repeat=3)
    total = torch.logsumexp(torch.stack([
        start[s[0]] + head._end()[s[-1]] + sum(one[0, t, y] for t, y in enumerate(s))
        + sum(trans[a, b] for a, b in zip(s, s[1:])) for s in sequences]), 0)
    torch.testing.assert_close(head.log_partition(one, None, trans, start)[0], total)


def test_a_checkpoint_from_before_end_constraints_loads_with_every_end_allowed():
    head = CRFHead(3, *allowed_transitions(BIOES, BIOES_TRAIN))
    state = {k: v for k, v in head.state_dict().items() if k != "end_mask"}
    again = CRFHead(3, *allowed_transitions(BIOES))
    again.load_state_dict(state)  # strict: nothing missing
    assert torch.equal(again.end_mask, torch.zeros(len(BIOES)))
