"""ExampleArray: the Examples it gives back are the ones it was given, and what reads its
arrays directly (vocabularies, tensors, corpus statistics) equals the list-of-Examples
path it replaces."""

import random

import pytest
import torch

from slotfill.data.batching import encode_split
from slotfill.data.check import soft_problems, split_stats
from slotfill.data.compact import ExampleArray, tag_sequences
from slotfill.data.corpus import Corpus
from slotfill.data.example import Example, Written
from slotfill.data.vocab import Vocabs

WORDS = ["arrive", "taipei", "on", "nov", "2nd", "leave", "boston", "x", "ünïcode"]
TAGS = ["O", "B-toloc.city_name", "I-toloc.city_name", "B-date", "I-date"]


def joined(words):
    offsets, at = [], 0
    for w in words:
        offsets.append((at, at + len(w)))
        at += len(w) + 1
    return Written(" ".join(words), tuple(offsets))


def random_examples(n: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        size = rng.randint(1, 6)
        tokens = tuple(rng.choice(WORDS) for _ in range(size))
        written_words = [t.capitalize() if rng.random() < 0.3 else t for t in tokens]
        kind = rng.random()
        if kind < 0.6:
            written = joined(written_words)
        elif kind < 0.8:  # two spaces between words: not the regular form
            text = "  ".join(written_words)
            offsets, at = [], 0
            for w in written_words:
                offsets.append((at, at + len(w)))
                at += len(w) + 2
            written = Written(text, tuple(offsets))
        else:
            written = None
        source = rng.choice([f"train.txt:{i + 1}", None, "export.json task 7", "a:b:3",
                             "x:007"])
        out.append(Example(tokens, tuple(rng.choice(TAGS) for _ in tokens),
                           rng.choice(["flight", "airfare", None]), source, written))
    return out


def test_gives_back_every_field_of_every_example():
    examples = random_examples(300)
    arrays = ExampleArray(examples)
    assert len(arrays) == 300
    for given, back in zip(examples, arrays):
        assert back == given
        assert (back.source, back.written) == (given.source, given.written)
    assert arrays[-1] == examples[-1] and arrays[5].source == examples[5].source
    assert list(arrays[10:20]) == examples[10:20] and list(arrays[::7]) == examples[::7]
    assert arrays == examples and arrays != examples[:-1]
    with pytest.raises(IndexError):
        arrays[300]


def test_refuses_an_example_whose_tags_do_not_fit_its_tokens():
    with pytest.raises(ValueError, match="2 tokens but 1 tags"):
        ExampleArray([Example(("a", "b"), ("O",))])


@pytest.mark.parametrize("chars", [False, True])
def test_vocabularies_and_tensors_from_the_arrays_equal_those_from_a_list(chars):
    examples = random_examples(200, seed=3)
    listed = Vocabs.build(examples, chars=chars)
    arrayed = Vocabs.build(ExampleArray(examples), chars=chars)
    assert arrayed.to_dict() == listed.to_dict()
    for compact in (False, True):
        a = encode_split(examples, listed, labels=False)
        b = encode_split(ExampleArray(examples), listed, labels=False, compact=compact)
        assert torch.equal(a.words, b.words.long()) and torch.equal(a.lengths, b.lengths)
        if chars:  # rows differ in order; the spelling each position points at does not
            assert torch.equal(a.chars[a.spellings], b.chars[b.spellings.long()])
    labelled = [e for e in examples if e.intent is not None]
    vocabs = Vocabs.build(labelled)
    a = encode_split(labelled, vocabs, labels=True)
    b = encode_split(ExampleArray(labelled), vocabs, labels=True, compact=True)
    assert b.tags.dtype == torch.int32
    assert torch.equal(a.tags, b.tags.long()) and torch.equal(a.intents, b.intents)


def test_an_absent_intent_or_an_unknown_tag_fails_as_with_a_list():
    examples = random_examples(50, seed=4)
    vocabs = Vocabs.build([e for e in examples if e.intent])
    with pytest.raises(KeyError):
        encode_split(ExampleArray(examples), vocabs, labels=True)
    with pytest.raises(KeyError):
        encode_split(examples, vocabs, labels=True)


def test_statistics_from_the_arrays_equal_those_of_the_examples():
    examples = random_examples(400, seed=5)
    stats = split_stats(ExampleArray(examples))
    assert stats.to_dict() == split_stats(examples).to_dict()
    assert stats.tokens == sum(len(e.tokens) for e in examples)
    assert tag_sequences(ExampleArray(examples)) == tag_sequences(examples)


def test_soft_problems_name_the_shared_and_ill_formed_utterances_of_any_split_order():
    train = random_examples(80, seed=6)
    test = [Example(("only", "in", "test"), ("O", "O", "O"), "flight", "test.txt:1"),
            train[40], train[2]]
    listed = soft_problems(Corpus("c", "jsonl", {"train": train, "test": test}))
    arrayed = soft_problems(Corpus("c", "jsonl", {"train": ExampleArray(train),
                                                  "test": ExampleArray(test)}))
    assert arrayed == listed
    assert any("2 utterances of test also occur in train" in w for w in arrayed)
    assert any("invalid" in w and "transitions in train" in w for w in arrayed)
