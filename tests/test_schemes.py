"""Tag schemes (data/bio.py): detection, chunks as conlleval delimits them in each scheme
(hand-counted, and against seqeval's default and strict modes), writing chunks in each
scheme, and the scores of BIOES tags."""

from __future__ import annotations

import random

import pytest
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import BILOU, IOB1, IOB2, IOBES, Entities

from slotfill.analysis.metrics import score
from slotfill.data.annotation import token_example
from slotfill.data.bio import (
    SCHEMES,
    convert_tags,
    detect_scheme,
    extract_spans,
    spans_to_tags,
    spread_tag,
    transition_problems,
)

# (tags, chunks) as conlleval counts them; BIOES and BILOU as seqeval's default mode
HAND_COUNTED = [
    # BIO (IOB2)
    (["B-a", "I-a", "O", "B-b"], [("a", 0, 2), ("b", 3, 4)]),
    (["B-a", "B-a", "I-b"], [("a", 0, 1), ("a", 1, 2), ("b", 2, 3)]),
    # IOB1: I- starts a chunk, B- only splits two of one type
    (["I-a", "I-a", "B-a", "O", "I-b"], [("a", 0, 2), ("a", 2, 3), ("b", 4, 5)]),
    (["I-a", "I-b", "I-b"], [("a", 0, 1), ("b", 1, 3)]),
    # BIOES: E- closes, S- stands alone, even against a chunk of its type
    (["B-a", "E-a", "S-a", "B-a", "I-a", "E-a"], [("a", 0, 2), ("a", 2, 3), ("a", 3, 6)]),
    (["S-a", "S-a", "O", "S-b"], [("a", 0, 1), ("a", 1, 2), ("b", 3, 4)]),
    (["B-a", "E-a", "B-a", "E-a"], [("a", 0, 2), ("a", 2, 4)]),  # conlleval alone merges
    (["O", "E-a", "E-a"], [("a", 1, 2), ("a", 2, 3)]),  # ill-formed: each E- its own
    (["B-a", "I-a"], [("a", 0, 2)]),  # ill-formed: the end closes it
    # BILOU reads as BIOES
    (["U-a", "B-b", "I-b", "L-b", "U-b"], [("a", 0, 1), ("b", 1, 4), ("b", 4, 5)]),
    # BMES (Chinese NER corpora): M- for I-
    (["B-a", "M-a", "E-a", "S-b"], [("a", 0, 3), ("b", 3, 4)]),
]


@pytest.mark.parametrize("tags, chunks", HAND_COUNTED)
def test_chunks_as_conlleval_counts_them(tags, chunks):
    assert extract_spans(tags) == chunks


def seqeval_default(tags: list[str]) -> list[tuple[str, int, int]]:
    """seqeval's default (conlleval-compatible) mode; BILOU's prefixes as BIOES's."""
    read = [{"L": "E", "U": "S"}.get(t[0], t[0]) + t[1:] for t in tags]
    return [(kind, start, end + 1) for kind, start, end in get_entities(read)]


def test_matches_seqeval_default_mode_on_random_sequences_of_every_scheme():
    rng = random.Random(11)
    for prefixes in ("BIO", "BIOES", "BILOU"):
        tags = ["O"] + [f"{p}-{k}" for p in prefixes if p != "O" for k in ("a", "b")]
        for _ in range(300):
            sequence = [rng.choice(tags) for _ in range(rng.randint(1, 9))]
            assert extract_spans(sequence) == seqeval_default(sequence), sequence


STRICT = {"bio": IOB2, "iob1": IOB1, "bioes": IOBES, "bilou": BILOU}


def random_chunks(rng: random.Random, length: int) -> list[tuple[str, int, int]]:
    chunks, i = [], 0
    while i < length:
        if rng.random() < 0.5:
            end = rng.randint(i + 1, min(length, i + 4))
            chunks.append((rng.choice("ab"), i, end))
            i = end
        else:
            i += 1
    return chunks


@pytest.mark.parametrize("scheme", SCHEMES)
def test_chunks_written_in_each_scheme_read_back_as_seqeval_strict_reads_them(scheme):
    rng = random.Random(scheme)
    for _ in range(200):
        length = rng.randint(1, 10)
        chunks = random_chunks(rng, length)
        tags = spans_to_tags(chunks, length, scheme)
        assert extract_spans(tags) == chunks, tags
        assert transition_problems(tags, scheme) == [], tags
        strict = Entities([tags], STRICT[scheme]).entities[0]
        assert [(e.tag, e.start, e.end) for e in strict] == chunks, tags
        assert detect_scheme([tags]) == scheme or not chunks
        for other in SCHEMES:
            assert extract_spans(convert_tags(tags, other)) == chunks


def test_written_examples_in_each_scheme():
    chunks = [("a", 0, 1), ("a", 1, 3), ("b", 4, 5)]
    assert spans_to_tags(chunks, 5) == ["B-a", "B-a", "I-a", "O", "B-b"]
    assert spans_to_tags(chunks, 5, "iob1") == ["I-a", "B-a", "I-a", "O", "I-b"]
    assert spans_to_tags(chunks, 5, "bioes") == ["S-a", "B-a", "E-a", "O", "S-b"]
    assert spans_to_tags(chunks, 5, "bilou") == ["U-a", "B-a", "L-a", "O", "U-b"]


def test_scheme_detection():
    assert detect_scheme([["O", "B-a", "I-a"], ["B-b"]]) == "bio"
    assert detect_scheme([["I-a", "I-a", "B-a"], ["O", "I-b"]]) == "iob1"
    assert detect_scheme([["I-a"], ["B-a"], ["O", "B-b", "I-b"]]) == "bio"  # mostly B- starts
    assert detect_scheme([["B-a", "E-a"], ["O"]]) == "bioes"
    assert detect_scheme([["S-a"]]) == "bioes" and detect_scheme([["B-a", "M-a", "E-a"]]) == \
        "bioes"
    assert detect_scheme([["U-a"], ["B-b", "L-b"]]) == "bilou"
    assert detect_scheme([["O", "O"]]) == detect_scheme([]) == "bio"


def test_a_word_cut_into_characters_keeps_its_scheme():
    assert spread_tag("S-x", 3) == ["B-x", "I-x", "E-x"]
    assert spread_tag("E-x", 2) == ["I-x", "E-x"] and spread_tag("B-x", 2) == ["B-x", "I-x"]
    assert spread_tag("U-x", 2) == ["B-x", "L-x"] and spread_tag("O", 2) == ["O", "O"]
    example = token_example(["我", "到达", "台北"], ["O", "S-act", "S-city"], None, "f:1", "auto")
    assert example.tags == ("O", "B-act", "E-act", "B-city", "E-city")
    assert extract_spans(example.tags) == [("act", 1, 3), ("city", 3, 5)]


def test_bioes_scores_count_chunks_not_tags():
    gold = [["B-a", "E-a", "O", "S-b"], ["S-a", "S-a"]]
    pred = [["B-a", "E-a", "O", "B-b"], ["B-a", "E-a"]]
    # gold: a(0-2) b(3) | a(0) a(1); predicted: a(0-2) b(3, ill-formed B-) | a(0-2)
    s = score(gold, pred)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 4)
    assert s["per_slot"]["a"]["support"] == 3 and s["per_slot"]["b"]["recall"] == 1.0
