from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from slotfill.data.tokenize import TOKENIZERS, normalise, tokenize
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


ANY_SCRIPT = st.text(alphabet=st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from("台北我想月日 。、「」ひらがなカタカナสวัสดีﬁß①İ¨\u0301\u0e31 .,!?'\u3000"
                    "\uff11\uff21")), max_size=60)


@given(ANY_SCRIPT, st.sampled_from(TOKENIZERS), st.booleans())
def test_offsets_property(text, mode, corpus):
    """For any text, script and tokenizer: each token is the exact text at its offsets,
    tokens do not overlap, hold no whitespace, and read as their text normalised."""
    previous_end = 0
    for token in tokenize(text, KNOWN, mode, corpus):
        assert text[token.start:token.end] == token.text and token.text
        assert token.start >= previous_end
        assert not any(ch.isspace() for ch in token.text)
        assert token.norm == normalise(token.text) and token.norm
        assert not any(ch.isspace() for ch in token.norm)
        previous_end = token.end


def test_nfkc_and_case_folding_keep_offsets_into_the_original():
    text = "Ｔａｉｐｅｉ ﬁve Straße ①"
    tokens = tokenize(text)
    assert [t.norm for t in tokens] == ["taipei", "five", "strasse", "1"]
    assert [t.text for t in tokens] == ["Ｔａｉｐｅｉ", "ﬁve", "Straße", "①"]
    assert all(text[t.start:t.end] == t.text for t in tokens)


def test_scripts_without_spaces_split_into_characters():
    text = "我想11月2日到达台北。Hello世界"
    assert [t.norm for t in tokenize(text)] == [
        "我", "想", "11", "月", "2", "日", "到", "达", "台", "北", "hello", "世", "界"]
    assert [t.norm for t in tokenize(text, {"。"})][10] == "。"  # known punctuation stays
    assert [t.norm for t in tokenize("สวัสดี")] == ["ส", "วั", "ส", "ดี"]  # marks stay on
    assert [t.norm for t in tokenize(text, mode="whitespace")] == [
        "我想11月2日到达台北。hello世界"]
    assert [t.norm for t in tokenize("ab 12", mode="characters")] == ["a", "b", "1", "2"]


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
