"""Corpus formats beyond ATIS: jsonl (and doccano), tokens, MASSIVE and Rasa; detection,
splitting, and the errors and repairs of span annotations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slotfill.cli import app
from slotfill.data.corpus import ReadOptions, detect_format, read_corpus, scan_corpus
from slotfill.data.formats.massive import parse_annotation
from slotfill.errors import DataError

SPLIT = ReadOptions(split=(0.5, 0.25, 0.25))
runner = CliRunner()


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def span_row(text: str, slots: dict[str, str], intent: str = "atis_flight") -> dict:
    spans = [{"start": text.index(v), "end": text.index(v) + len(v), "label": k}
             for k, v in slots.items()]
    return {"text": text, "spans": spans, "intent": intent}


ROWS = [span_row("Arrive Taipei on Nov 2nd", {"toloc.city_name": "Taipei"}),
        span_row("leave Boston, please", {"fromloc.city_name": "Boston"}),
        span_row("fly to St. Louis.", {"toloc.city_name": "St. Louis"})]


def test_jsonl_spans_become_bio_tags_on_predict_tokens(tmp_path):
    for split in ("train", "dev", "test"):
        write_jsonl(tmp_path / f"{split}.jsonl", ROWS)
    corpus = read_corpus(tmp_path)
    assert corpus.format == "jsonl" and set(corpus.splits) == {"train", "valid", "test"}
    first, second, third = corpus["train"]
    assert first.tokens == ("arrive", "taipei", "on", "nov", "2nd")
    assert first.tags == ("O", "B-toloc.city_name", "O", "O", "O")
    assert second.tokens == ("leave", "boston", ",", "please")  # a corpus keeps punctuation
    assert third.tokens == ("fly", "to", "st.", "louis", ".")  # inner dots kept, final split
    assert third.tags[2:4] == ("B-toloc.city_name", "I-toloc.city_name")
    assert first.written.words()[1] == "Taipei" and first.intent == "atis_flight"


def test_doccano_forms(tmp_path):
    text = "arrive Taipei on Nov 2nd"
    path = write_jsonl(tmp_path / "all.jsonl", [
        {"text": text, "label": [[7, 13, "toloc.city_name"]]},
        {"text": text, "entities": [{"start_offset": 17, "end_offset": 20,
                                     "label": "arrive_date.month_name", "id": 3}]},
        {"text": "hello"}] * 4)
    corpus = read_corpus(path, options=SPLIT)
    assert corpus.format == "jsonl"
    tags = {e.tags for split in corpus.splits.values() for e in split}
    assert ("O", "B-toloc.city_name", "O", "O", "O") in tags
    assert ("O", "O", "O", "B-arrive_date.month_name", "O") in tags


def test_unreadable_spans_are_errors_naming_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [
        {"text": "arrive Taipei", "spans": [{"start": "7", "end": 13, "label": "city"}]},
        {"text": "arrive Taipei", "spans": [{"start": 7, "end": 13, "label": 4}]},
        {"text": ["arrive"]}])
    (tmp_path / "train.jsonl").write_text(path.read_text() + "{not json\n")
    with pytest.raises(DataError) as info:
        read_corpus(tmp_path, splits=("train",))
    detail = info.value.detail
    assert f"{path}:1: span offsets must be integers, got '7', 13" in detail
    assert f"{path}:2: span 7-13 has the label 4; a label is a string" in detail
    assert f"{path}:3: expected \"text\" to be a string, got list" in detail
    assert "data.format=tokens" in detail
    assert f"{path}:4: not valid JSON" in detail


def test_tokens_format_splits_chinese_words_into_characters(tmp_path):
    rows = [{"text": ["我", "想", "到达", "台北"], "slot": ["O", "O", "O", "B-toloc"],
             "intent": "atis_flight"},
            {"text": ["fly", "to", "Boston"], "slot": ["O", "O", "B-toloc"]}]
    for split in ("train", "valid", "test"):
        write_jsonl(tmp_path / f"{split}.jsonl", rows)
    corpus = read_corpus(tmp_path)
    assert corpus.format == "tokens"
    zh, en = corpus["train"]
    assert zh.tokens == ("我", "想", "到", "达", "台", "北")
    assert zh.tags == ("O", "O", "O", "O", "B-toloc", "I-toloc")
    assert en.tokens == ("fly", "to", "boston") and en.written.words()[2] == "Boston"
    whitespace = read_corpus(tmp_path, options=ReadOptions(tokenizer="whitespace"))
    assert whitespace["train"][0].tokens == ("我", "想", "到达", "台北")
    write_jsonl(tmp_path / "train.jsonl", [{"text": ["a", "b"], "slot": ["O"]}])
    with pytest.raises(DataError, match="train.jsonl:1: 1 tags for 2 tokens"):
        read_corpus(tmp_path)


MASSIVE = [
    {"locale": "en-US", "partition": "train", "intent": "alarm_set",
     "utt": "wake me up at five am this week",
     "annot_utt": "wake me up at [time : five am] [date : this week]"},
    {"locale": "en-US", "partition": "dev", "intent": "alarm_set", "utt": "wake me at nine",
     "annot_utt": "wake me at [time : nine]"},
    {"locale": "en-US", "partition": "test", "intent": "alarm_set", "utt": "wake me at six",
     "annot_utt": "wake me at [time : six]"},
    {"locale": "zh-CN", "partition": "train", "intent": "alarm_set",
     "utt": "明天早上五点叫醒我", "annot_utt": "[date : 明天] [time : 早上五点] 叫醒我"},
    {"locale": "zh-CN", "partition": "dev", "intent": "alarm_set", "utt": "九点叫醒我",
     "annot_utt": "[time : 九点] 叫醒我"},
    {"locale": "zh-CN", "partition": "test", "intent": "alarm_set", "utt": "六点叫醒我",
     "annot_utt": "[time : 六点]叫醒我"},
]


def test_massive_annotation_parser():
    assert parse_annotation("wake me at [time : five am] now") == (
        "wake me at five am now", [(11, 18, "time")])


def test_massive_file_and_per_locale_directory(tmp_path):
    one = write_jsonl(tmp_path / "all.jsonl", MASSIVE)
    assert detect_format(one) == "massive"
    corpus = read_corpus(one, options=ReadOptions(locales=("zh-CN",)))
    zh = corpus["train"][0]
    assert zh.tokens == tuple("明天早上五点叫醒我")  # characters, as MASSIVE's baselines
    assert zh.tags[:6] == ("B-date", "I-date", "B-time", "I-time", "I-time", "I-time")
    assert zh.written.text == "明天早上五点叫醒我"  # slots placed on `utt`, unspaced
    both = read_corpus(one)
    assert len(both["train"]) == 2
    folder = tmp_path / "massive"
    write_jsonl(folder / "en-US.jsonl", [r for r in MASSIVE if r["locale"] == "en-US"])
    write_jsonl(folder / "zh-CN.jsonl", [r for r in MASSIVE if r["locale"] == "zh-CN"])
    en = read_corpus(folder, options=ReadOptions(locales=("en-US",)))
    assert en.format == "massive" and en["train"][0].tags == (
        "O", "O", "O", "O", "B-time", "I-time", "B-date", "I-date")
    with pytest.raises(DataError, match="no utterances of fr-FR.*it has en-US, zh-CN"):
        read_corpus(folder, options=ReadOptions(locales=("fr-FR",)))


RASA = """version: "3.1"
nlu:
- intent: book_flight
  examples: |
    - fly from [Taipei](city) to [LA]{"entity": "city", "role": "destination"}
    - I want to go to [Paris]{"entity": "city", "role": "destination"}
    - book a flight
    - fly to [Tokyo](city:tokyo)
- synonym: LA
  examples: |
    - Los Angeles
- intent: greet
  examples: |
    - hello
    - hi there
    - good morning
    - hey
"""


def test_rasa_with_roles_and_a_deterministic_stratified_split(tmp_path):
    path = tmp_path / "nlu.yml"
    path.write_text(RASA)
    assert detect_format(path) == "rasa" and detect_format(tmp_path) == "rasa"
    with pytest.raises(DataError, match="no train/valid/test splits: set data.split="):
        read_corpus(path)
    options = ReadOptions(split=(0.5, 0.25, 0.25), split_seed=3)
    corpus = read_corpus(path, options=options)
    examples = [e for split in corpus.splits.values() for e in split]
    assert len(examples) == 8  # the synonym's lines are no examples
    tags = {e.tokens: e.tags for e in examples}
    assert tags[("fly", "from", "taipei", "to", "la")] == (
        "O", "O", "B-city", "O", "B-city.destination")
    assert tags[("fly", "to", "tokyo")] == ("O", "O", "B-city")
    for split in ("train", "valid", "test"):  # each intent in every split
        assert {e.intent for e in corpus[split]} == {"book_flight", "greet"}
    again = read_corpus(path, options=options)
    assert all([e.tokens for e in corpus[s]] == [e.tokens for e in again[s]]
               for s in corpus.splits)
    other = read_corpus(path, options=ReadOptions(split=(0.5, 0.25, 0.25), split_seed=4))
    assert any([e.tokens for e in corpus[s]] != [e.tokens for e in other[s]]
               for s in corpus.splits)


def test_rasa_errors_name_the_line(tmp_path):
    path = tmp_path / "nlu.yml"
    path.write_text(RASA.replace('"role": "destination"}', '"role": destination}', 1))
    with pytest.raises(DataError) as info:
        read_corpus(path, options=SPLIT)
    assert f"{path}:5: entity attributes" in info.value.detail
    assert "not valid JSON" in info.value.detail


@pytest.mark.parametrize("broken", ["[Tokyo](city", "[Tokyo] (city)", 'Tokyo]{"entity": "city"}'])
def test_rasa_half_written_entities_are_errors_not_text(tmp_path, broken):
    path = tmp_path / "nlu.yml"
    path.write_text(RASA.replace("[Tokyo](city:tokyo)", broken))
    with pytest.raises(DataError) as info:
        read_corpus(path, options=SPLIT)
    assert f"{path}:8: " in info.value.detail and "looks like an entity" in info.value.detail


def test_data_split_only_for_corpora_without_splits(tmp_path):
    for split in ("train", "valid", "test"):
        write_jsonl(tmp_path / f"{split}.jsonl", ROWS)
    corpus = scan_corpus(tmp_path, options=SPLIT)
    assert any("has its own splits" in p for p in corpus.problems)


def test_data_check_and_format_choices(tmp_path):
    path = tmp_path / "nlu.yml"
    path.write_text(RASA)
    result = runner.invoke(app, ["data", "check", str(path), "--split", "0.5,0.25,0.25"])
    assert result.exit_code == 0, result.output
    assert "(rasa)" in result.stdout and "city.destination" in result.stdout
    result = runner.invoke(app, ["data", "check", str(path), "--format", "yaml"])
    assert result.exit_code == 2 and "valid: auto, atis, conll, jsonl, tokens, massive, " \
        "labelstudio, rasa" in result.stderr
    result = runner.invoke(app, ["data", "check", str(path)])
    assert result.exit_code == 1 and "set data.split=0.8,0.1,0.1" in result.stdout
