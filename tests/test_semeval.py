"""SemEval-2013 partial-match scores: a hand-counted example (the one the metrics page
works through), every number against nervaluate on random and real ATIS tag sequences of
every scheme, merging, and where they land (metrics.md, eval's table)."""

from __future__ import annotations

import random

import pytest
from nervaluate import Evaluator
from nervaluate.loaders import ListLoader

from slotfill.analysis.metrics import Counts, score
from slotfill.analysis.semeval import SCENARIOS, SemEvalCounts, outcomes
from slotfill.analysis.tables import metrics_markdown
from slotfill.data.bio import extract_spans, spans_to_tags

NERVALUATE_NAMES = {"strict": "strict", "exact": "exact", "partial": "partial",
                    "type": "ent_type"}
FIELDS = ("correct", "incorrect", "partial", "missed", "spurious", "actual", "possible",
          "precision", "recall", "f1")


def nervaluate_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """nervaluate's scores of the chunks slotfill reads (its dict loader, inclusive ends),
    in the shape of scores["semeval"]."""
    def entities(sequences):
        return [[{"label": kind, "start": start, "end": end - 1}
                 for kind, start, end in extract_spans(tags)] for tags in sequences]
    types = sorted({kind for tags in gold + predicted for kind, _, _ in extract_spans(tags)})
    found = Evaluator(entities(gold), entities(predicted), tags=types, loader="dict").evaluate()

    def fields(result) -> dict:
        return {name: getattr(result, name) for name in FIELDS}
    return {**{ours: fields(found["overall"][theirs])
               for ours, theirs in NERVALUATE_NAMES.items()},
            "per_slot": {kind: {ours: fields(per_type[theirs])
                                for ours, theirs in NERVALUATE_NAMES.items()}
                         for kind, per_type in sorted(found["entities"].items())}}


def assert_same_as_nervaluate(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    ours = score(gold, predicted)["semeval"]
    theirs = nervaluate_scores(gold, predicted)
    assert set(ours["per_slot"]) == set(theirs["per_slot"])
    for where, mine, reference in [("overall", ours, theirs), *(
            (kind, ours["per_slot"][kind], theirs["per_slot"][kind])
            for kind in theirs["per_slot"])]:
        for scenario in SCENARIOS:
            assert mine[scenario] == pytest.approx(reference[scenario], rel=1e-12, abs=0), \
                (where, scenario)
    return ours


# the metrics page's worked example
WORDS = "from boston to san francisco monday morning cheapest".split()
GOLD = ["O", "B-fromloc.city_name", "O", "B-toloc.city_name", "I-toloc.city_name",
        "B-depart_date.day_name", "B-depart_time.period_of_day", "O"]
PREDICTED = ["O", "B-toloc.city_name", "O", "B-toloc.city_name", "O",
             "B-depart_date.day_name", "O", "B-cost_relative"]


def counts_of(scores: dict) -> tuple[int, ...]:
    return tuple(scores[k] for k in ("correct", "incorrect", "partial", "missed", "spurious"))


def test_the_worked_example_counted_by_hand():
    s = score([GOLD], [PREDICTED])
    semeval = s["semeval"]
    #                                        COR INC PAR MIS SPU
    assert counts_of(semeval["strict"]) == (1, 2, 0, 1, 1)
    assert counts_of(semeval["exact"]) == (2, 1, 0, 1, 1)  # boston: right bounds
    assert counts_of(semeval["partial"]) == (2, 0, 1, 1, 1)  # san: half of san francisco
    assert counts_of(semeval["type"]) == (2, 1, 0, 1, 1)  # san: overlaps, right type
    assert [semeval[k]["precision"] for k in SCENARIOS] == [0.25, 0.5, 0.625, 0.5]
    assert all(semeval[k]["actual"] == 4 and semeval[k]["possible"] == 4 for k in SCENARIOS)
    # strict is conlleval's count
    assert (semeval["strict"]["precision"], semeval["strict"]["recall"]) == \
        (s["precision"], s["recall"])
    # per slot type, only that type's spans: the wrongly typed boston is missed (fromloc)
    # and spurious (toloc) in every scenario
    toloc, fromloc = semeval["per_slot"]["toloc.city_name"], \
        semeval["per_slot"]["fromloc.city_name"]
    assert counts_of(toloc["strict"]) == (0, 1, 0, 0, 1)
    assert counts_of(toloc["partial"]) == (0, 0, 1, 0, 1)
    assert (toloc["partial"]["precision"], toloc["partial"]["recall"]) == (0.25, 0.5)
    assert counts_of(toloc["type"]) == (1, 0, 0, 0, 1)
    assert all(counts_of(fromloc[k]) == (0, 0, 0, 1, 0) for k in SCENARIOS)
    assert_same_as_nervaluate([GOLD], [PREDICTED])


def test_each_prediction_claims_one_gold_span_in_order():
    gold = [("a", 0, 4)]
    two_halves = [("a", 0, 2), ("a", 2, 4)]
    # the first half claims the gold span; the second finds none left: spurious
    assert outcomes(gold, two_halves, "partial") == {"partial": 1, "spurious": 1}
    # a wrongly typed span claims it first, so the right type after it is spurious too
    wrong_first = [("b", 0, 1), ("a", 1, 4)]
    assert outcomes(gold, wrong_first, "type") == {"incorrect": 1, "spurious": 1}
    # of two gold spans of its type, a prediction takes the closer boundaries
    assert outcomes([("a", 0, 2), ("a", 2, 5)], [("a", 1, 5)], "type") == \
        {"correct": 1, "missed": 1}
    assert outcomes([], [], "strict") == {}
    assert outcomes([("a", 0, 1)], [], "exact") == {"missed": 1}


def random_chunks(rng: random.Random, length: int, kinds="abc") -> list:
    chunks, i = [], 0
    while i < length:
        if rng.random() < 0.45:
            end = rng.randint(i + 1, min(length, i + 4))
            chunks.append((rng.choice(kinds), i, end))
            i = end
        else:
            i += 1
    return chunks


def perturbed(rng: random.Random, chunks: list, length: int, kinds="abc") -> list:
    """Chunks with some retyped, moved, cut, dropped or added (kept apart from each
    other)."""
    out = []
    for kind, start, end in chunks:
        roll = rng.random()
        if roll < 0.15:
            continue
        if roll < 0.3:
            kind = rng.choice(kinds)
        elif roll < 0.45:
            start = min(end - 1, max(0, start + rng.choice((-1, 1))))
        elif roll < 0.6:
            end = max(start + 1, min(length, end + rng.choice((-1, 1))))
        out.append((kind, start, end))
    out += random_chunks(rng, length, kinds)[:rng.randint(0, 1)]
    kept, taken = [], set()
    for kind, start, end in out:
        if not taken & set(range(start, end)):
            kept.append((kind, start, end))
            taken |= set(range(start, end))
    return kept


@pytest.mark.parametrize("scheme", ["bio", "iob1", "bioes", "bilou"])
def test_matches_nervaluate_on_random_chunks_in_every_scheme(scheme):
    rng = random.Random(2013)
    for _ in range(60):
        gold, predicted = [], []
        for _ in range(rng.randint(1, 12)):
            length = rng.randint(0, 14)
            chunks = random_chunks(rng, length)
            gold.append(spans_to_tags(chunks, length, scheme))
            predicted.append(spans_to_tags(perturbed(rng, chunks, length), length, scheme))
        assert_same_as_nervaluate(gold, predicted)


def test_matches_nervaluate_on_random_ill_formed_tags():
    rng = random.Random(9)
    for prefixes in ("BI", "BIES", "BILU"):
        tags = ["O"] + [f"{p}-{k}" for p in prefixes for k in "ab"]
        for _ in range(150):
            gold = [[rng.choice(tags) for _ in range(rng.randint(0, 9))]
                    for _ in range(rng.randint(1, 6))]
            predicted = [[rng.choice(tags) if rng.random() < 0.5 else t for t in seq]
                         for seq in gold]
            assert_same_as_nervaluate(gold, predicted)


def test_nervaluate_reads_bio_as_conlleval_does_but_not_bioes():
    """Why the comparison feeds nervaluate slotfill's chunks: its list loader agrees with
    conlleval on BIO, ill-formed sequences included, but reads only B- and I-."""
    rng = random.Random(4)
    tags = ["O", "B-a", "I-a", "B-b", "I-b"]
    for _ in range(2000):
        sequence = [rng.choice(tags) for _ in range(rng.randint(1, 8))]
        read = [(e.label, e.start, e.end + 1) for e in ListLoader().load([sequence])[0]]
        assert read == extract_spans(sequence), sequence
    assert ListLoader().load([["B-a", "E-a", "S-a"]])[0] != extract_spans(["B-a", "E-a", "S-a"])
    with pytest.raises(ValueError, match="Invalid tag format"):
        ListLoader().load([["S-a"]])


def test_strict_equals_conlleval_overall_and_per_slot():
    rng = random.Random(5)
    gold, predicted = [], []
    for _ in range(300):
        length = rng.randint(1, 12)
        chunks = random_chunks(rng, length)
        gold.append(spans_to_tags(chunks, length))
        predicted.append(spans_to_tags(perturbed(rng, chunks, length), length))
    s = score(gold, predicted)
    strict = s["semeval"]["strict"]
    assert (strict["precision"], strict["recall"]) == pytest.approx((s["precision"],
                                                                     s["recall"]))
    for kind, row in s["per_slot"].items():
        mine = s["semeval"]["per_slot"][kind]["strict"]
        assert (mine["f1"], mine["possible"]) == (pytest.approx(row["f1"]), row["support"])


def test_counts_merge_equals_joint_counts():
    rng = random.Random(6)
    parts, joint = [Counts(), Counts(), Counts()], Counts()
    for i in range(90):
        length = rng.randint(1, 10)
        chunks = random_chunks(rng, length)
        g, p = spans_to_tags(chunks, length), spans_to_tags(perturbed(rng, chunks, length),
                                                            length)
        parts[i % 3].add(g, p)
        joint.add(g, p)
    merged = parts[0].merge(parts[1]).merge(parts[2])
    assert merged.semeval == joint.semeval
    assert merged.scores()["semeval"] == joint.scores()["semeval"]
    empty = SemEvalCounts().scores()
    assert empty["per_slot"] == {} and all(
        empty[k]["possible"] == empty[k]["actual"] == empty[k]["f1"] == 0 for k in SCENARIOS)


def read_tags(path) -> list[list[str]]:
    return [line.split() for line in path.read_text(encoding="utf-8").splitlines()]


def test_matches_nervaluate_on_real_atis_with_perturbed_predictions(atis_dir):
    gold = read_tags(atis_dir / "test" / "seq.out")
    tag_set = sorted({t for tags in read_tags(atis_dir / "train" / "seq.out") for t in tags})
    kinds = sorted({t[2:] for t in tag_set if t != "O"})
    rng = random.Random(893)
    predicted = []
    for tags in gold:
        new = spans_to_tags(perturbed(rng, extract_spans(tags), len(tags), kinds), len(tags))
        # and some single tags replaced by any tag of the corpus: ill-formed BIO too
        predicted.append([rng.choice(tag_set) if rng.random() < 0.03 else t for t in new])
    ours = assert_same_as_nervaluate(gold, predicted)
    assert len(ours["per_slot"]) > 60
    f1 = [ours[k]["f1"] for k in SCENARIOS]
    assert f1[0] < f1[1] < f1[2] and f1[0] < f1[3] < 1  # the lenient scenarios forgive


def test_metrics_markdown_has_the_partial_tables():
    s = score([GOLD], [PREDICTED])
    text = metrics_markdown({"test": s})
    assert "## Partial matches (SemEval-2013): test" in text
    assert "| partial | 2 | 0 | 1 | 1 | 1 | 62.50 | 62.50 | 62.50 |" in text
    assert "| toloc.city_name | 0.00 | 0.00 | 33.33 | 66.67 | 1 |" in text
