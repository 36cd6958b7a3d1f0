from slotfill.data.corpus import Example
from slotfill.data.vocab import PAD, UNK, Vocab, Vocabs


def test_build_orders_by_frequency_then_first_seen():
    v = Vocab.build([["b", "a", "c"], ["a", "c"], ["a"]])
    assert v.itos == [PAD, UNK, "a", "c", "b"]
    assert v.encode(["a", "zzz"]) == [2, 1]
    assert v.decode([2, 3]) == ["a", "c"]


def test_without_specials_unknown_is_an_error():
    tags = Vocab.build([["O", "B-x"]], specials=False)
    assert tags.itos == ["O", "B-x"]
    try:
        tags.index("B-y")
    except KeyError:
        pass
    else:
        raise AssertionError("expected KeyError")


def test_round_trip():
    examples = [Example(("fly", "to", "boston"), ("O", "O", "B-toloc.city_name"), "atis_flight")]
    vocabs = Vocabs.build(examples)
    again = Vocabs.from_dict(vocabs.to_dict())
    assert again.words == vocabs.words and again.tags == vocabs.tags
    assert again.intents.itos == ["atis_flight"]
