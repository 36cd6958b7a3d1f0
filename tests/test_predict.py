from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from slotfill.data.tokenize import tokenize
from slotfill.runtime import SMALL_BATCH_TOKENS, threads_for_batch
from slotfill.serving.predict import Predictor

KNOWN = {"st.", "i'd", "o'clock", "louis", "fly", "to"}


def texts(text, known=KNOWN):
    return [t.norm for t in tokenize(text, known)]


def test_lowercases_and_splits_punctuation():
    assert texts('Arrive Taipei, on Nov 2nd!') == ["arrive", "taipei", "on", "nov", "2nd"]
    assert texts('"Fly" to (Boston)?') == ["fly", "to", "boston"]


def test_keeps_apostrophes_and_known_abbreviations():
    assert texts("I'd fly to St. Louis at 5 o'clock.") == [
        "i'd", "fly", "to", "st.", "louis", "at", "5", "o'clock"]
    assert texts("Leave Nov. 2nd") == ["leave", "nov", "2nd"]  # unknown "nov." -> "nov"


def test_punctuation_known_to_the_model_is_kept():
    assert texts("boston , denver", KNOWN | {","}) == ["boston", ",", "denver"]


def test_offsets_point_at_the_original_text():
    text = "  Arrive TAIPEI,  on Nov 2nd!  "
    for token in tokenize(text):
        assert text[token.start:token.end] == token.text
        assert token.text.lower() == token.norm


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_offsets_property(text):
    previous_end = 0
    for token in tokenize(text, KNOWN):
        assert text[token.start:token.end] == token.text and token.text
        assert token.start >= previous_end
        assert not any(ch.isspace() for ch in token.text)
        previous_end = token.end


def test_predictor_reports_slots_in_original_casing(trained_run):
    predictor = Predictor(trained_run / "best.pt")
    texts_in = ["Leave Boston, on Nov 2nd!", "", "!!!", "xyzzy " * 300]
    results = predictor.predict(texts_in)
    assert [r["text"] for r in results] == texts_in
    first = results[0]
    assert first["tokens"] == ["Leave", "Boston", "on", "Nov", "2nd"]
    assert len(first["tags"]) == 5
    for result in results:
        for slot in result["slots"]:
            assert result["text"][slot["start"]:slot["end"]] == slot["value"]
    assert results[1] == {"text": "", "tokens": [], "tags": [], "slots": []}
    assert results[2]["tokens"] == []
    assert len(results[3]["tags"]) == 300


def test_small_cpu_batches_run_on_one_thread_and_restore_the_count():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threads_for_batch(SMALL_BATCH_TOKENS - 1, torch.device("cpu")):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), threads_for_batch(1, torch.device("cpu")):
            raise RuntimeError
        assert torch.get_num_threads() == 2
        with threads_for_batch(SMALL_BATCH_TOKENS, torch.device("cpu")):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_unicode_lookalikes_read_as_ascii():
    """Curly quotes and dashes from phones and word processors: `o’clock` is `o'clock`,
    and the token's text and offsets still point at what the user wrote."""
    text = "I’d fly at 5 o’clock “tomorrow”"
    tokens = tokenize(text, KNOWN)
    assert [t.norm for t in tokens] == ["i'd", "fly", "at", "5", "o'clock", "tomorrow"]
    assert [t.text for t in tokens][-2:] == ["o’clock", "tomorrow"]
    for token in tokens:
        assert text[token.start:token.end] == token.text
