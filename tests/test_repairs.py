"""Span annotations repaired before they are refused (data/annotation.py): each
rule on a small case, the warning it gives, and data.strict turning the same lines into
errors; predict splitting clitics as the repaired corpus does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slotfill.data.annotation import slot_name
from slotfill.data.corpus import ReadOptions, read_corpus, scan_corpus
from slotfill.data.tokenize import tokenize
from slotfill.errors import DataError


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def spans(*items) -> list[dict]:
    return [{"start": s, "end": e, "label": label} for s, e, label in items]


def read_one(tmp_path: Path, text: str, *items, strict: bool = False):
    """(tags, warnings, problems) of one utterance as the jsonl reader reads it."""
    path = write_rows(tmp_path / "train.jsonl", [{"text": text, "spans": spans(*items)}])
    corpus = scan_corpus(tmp_path, splits=("train",), options=ReadOptions(strict=strict))
    tags = corpus["train"][0].tags if corpus["train"] else None
    here = f"{path}:1: "
    return tags, [w.removeprefix(here) for w in corpus.warnings], corpus.problems


@pytest.mark.parametrize("text, clitic", [
    ("Steven Carter's car", "'s"), ("Steven Carter’s car", "’s"), ("Steven Carter' car", "'"),
    ("Steven Carter'll go", "'ll")])
def test_a_clitic_after_a_span_becomes_its_own_token(tmp_path, text, clitic):
    tags, warnings, problems = read_one(tmp_path, text, (0, 13, "name"))
    word = text.split()[1]
    assert not problems and tags == ("B-name", "I-name", "O", "O")
    assert warnings[0] == (f"span 0-13 'Steven Carter' (name) ends inside the word {word!r}; "
                           f"repaired by making {clitic!r} a token of its own")
    corpus = read_corpus(tmp_path, splits=("train",))
    assert corpus["train"][0].tokens[1:3] == ("carter", clitic.replace("’", "'"))
    assert corpus["train"][0].written.words()[2] == clitic  # as written, for convert


def test_a_span_cutting_a_word_otherwise_is_widened_to_the_word(tmp_path):
    tags, warnings, _ = read_one(tmp_path, "arrive Taipei", (7, 12, "city"))
    assert tags == ("O", "B-city")
    assert warnings[0] == ("span 7-12 'Taipe' (city) cuts the word 'Taipei' (7-13); "
                           "repaired to 7-13 'Taipei', whole words")


@pytest.mark.parametrize("start, end, problem", [
    (7, 40, "lies outside the text, which has 13 characters (offsets count characters "
            "from 0; end is exclusive)"),
    (-1, 3, "lies outside the text, which has 13 characters (offsets count characters "
            "from 0; end is exclusive)"),
    (7, 7, "is empty"), (9, 7, "ends before it starts")])
def test_a_span_outside_or_empty_is_dropped_not_the_utterance(tmp_path, start, end, problem):
    tags, warnings, problems = read_one(tmp_path, "arrive Taipei", (start, end, "city"),
                                        (0, 6, "verb"))
    assert not problems and tags == ("B-verb", "O")
    assert warnings[0] == f"span {start}-{end} (city) {problem}; span dropped"


def test_overlapping_spans_keep_the_first_and_the_longer(tmp_path):
    tags, warnings, _ = read_one(tmp_path, "fly to New York now", (7, 15, "city"),
                                 (11, 15, "state"), (7, 10, "word"))
    assert tags == ("O", "O", "B-city", "I-city", "O")
    assert warnings[:2] == [
        "span 7-10 'New' (word) overlaps span 7-15 'New York' (city); span dropped (a word "
        "has one slot: the span that starts first is kept)",
        "span 11-15 'York' (state) overlaps span 7-15 'New York' (city); span dropped (a "
        "word has one slot: the span that starts first is kept)"]


def test_edges_twice_and_no_word(tmp_path):
    tags, warnings, _ = read_one(tmp_path, "arrive  Taipei, ok", (7, 15, "city"),
                                 (7, 15, "city"), (14, 15, "comma"))
    assert tags == ("O", "B-city", "O", "O")
    assert warnings[:3] == [
        "span 7-15 (city) is given twice; repaired by keeping one",
        "span 7-15 ' Taipei,' (city) has spaces or punctuation at its edges; repaired to "
        "8-14 'Taipei'",
        "span 14-15 ',' (comma) covers no word; span dropped"]


def test_labels_map_to_slot_names_said_once_with_the_mapping(tmp_path):
    assert slot_name("Candidate name") == "Candidate_name"
    assert slot_name(" Years of Experience (approx.) ") == "Years_of_Experience_approx."
    assert slot_name("Désignation") == "Désignation" and slot_name("toloc.city_name") == \
        "toloc.city_name"
    path = write_rows(tmp_path / "all.jsonl", [
        {"text": "Anna Lee Java", "label": [[0, 8, "Candidate name"], [9, 13, "Skill"]]},
        {"text": "Bob Go", "label": [[0, 3, "Candidate name"], [4, 6, "!!"]]}] * 3)
    corpus = read_corpus(path, options=ReadOptions(split=(0.5, 0.25, 0.25)))
    tags = {t for split in corpus.splits.values() for e in split for t in e.tags}
    assert tags == {"B-Candidate_name", "I-Candidate_name", "B-Skill", "O"}
    renamed = [w for w in corpus.warnings if w.startswith("labels renamed")]
    assert renamed == [
        "labels renamed to slot names (each run of characters other than letters, digits, "
        f"'.', '_' and '-' becomes '_', none at either end): 'Candidate name' -> "
        f"'Candidate_name' (first at {path}:1)"]
    assert f"{path}:2: span 4-6 (!!) has the label '!!', with no letter or digit; span " \
        "dropped" in corpus.warnings
    assert corpus.warnings[-1] == ("4 repairs, each a warning above (data.strict=true "
                                   "refuses a corpus that needs any)")


def test_strict_turns_the_same_lines_into_errors(tmp_path):
    text, items = "Steven Carter's Taipei", [(0, 13, "first name"), (16, 21, "city"),
                                             (30, 40, "city")]
    _, warnings, _ = read_one(tmp_path, text, *items)
    _, strict_warnings, problems = read_one(tmp_path, text, *items, strict=True)
    repairs = warnings[:-1]  # all but the count
    assert len(repairs) == 4 and not strict_warnings
    assert [p.split(": ", 1)[-1] for p in problems[:-1]] == [r.split(": ", 1)[-1]
                                                            for r in repairs]
    assert problems[-1] == ("data.strict=true: 4 repairs refused (each an error above); "
                            "without data.strict they are made, with a warning each")
    with pytest.raises(DataError, match="data.strict=true: 4 repairs refused"):
        read_corpus(tmp_path, splits=("train",), options=ReadOptions(strict=True))


def test_predict_splits_a_clitic_the_model_knows_off_a_word_it_does_not():
    def words(text, known):
        return [t.text for t in tokenize(text, known)]
    text = "Steven Carter’s car isn't Jones' à l'heure"
    assert words(text, set()) == ["Steven", "Carter’s", "car", "isn't", "Jones'", "à",
                                  "l'heure"]
    assert words(text, {"'s", "n't", "'"}) == ["Steven", "Carter", "’s", "car", "is", "n't",
                                               "Jones", "'", "à", "l'heure"]
    assert words(text, {"'s", "carter's"}) == ["Steven", "Carter’s", "car", "isn't",
                                               "Jones'", "à", "l'heure"]
    tokens = tokenize("Carter's", {"'s"})
    assert [(t.start, t.end, t.norm) for t in tokens] == [(0, 6, "carter"), (6, 8, "'s")]
