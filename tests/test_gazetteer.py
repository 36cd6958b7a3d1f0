"""Gazetteers (word features from lists of values) and slot-value substitution."""

from __future__ import annotations

import pytest
from conftest import CONFIGS, TINY, tiny_overrides

from slotfill.config import Config, load_config
from slotfill.data.batching import encode_split
from slotfill.data.corpus import Example, read_corpus
from slotfill.data.gazetteer import Gazetteers, load_gazetteers, read_entries
from slotfill.data.vocab import Vocabs
from slotfill.errors import ConfigError, DataError
from slotfill.resources import bundled_gazetteers
from slotfill.training.augment import SlotSubstitution

CITIES = Gazetteers({"city": [("salt", "lake", "city"), ("salt", "lake"), ("boston",),
                              ("st.", "louis")],
                     "month": [("nov",), ("november",)]})


def test_each_word_gets_b_and_i_features_for_every_entry_it_is_part_of():
    features = CITIES.features("From Salt Lake City to ST LOUIS on Nov. 2nd".split())
    #        B_city I_city B_month I_month
    assert features == [[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0],
                        [0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0],
                        [0, 0, 1, 0], [0, 0, 0, 0]]
    assert CITIES.features(["salt"]) == [[0, 0, 0, 0]]  # a partial entry is no match
    assert Gazetteers.from_dict(CITIES.to_dict()) == CITIES


def test_shipped_lists_cover_what_the_mission_needs():
    shipped = bundled_gazetteers()
    assert {"city_name", "airport_name", "month_name", "day_name", "day_number"} <= set(shipped)
    entries = {name: set(read_entries(path)) for name, path in shipped.items()}
    assert {("taipei",), ("boston",), ("salt", "lake", "city")} <= entries["city_name"]
    assert {("nov",), ("november",), ("sept",)} <= entries["month_name"]
    assert {("2nd",), ("2",), ("second",), ("two",), ("twenty", "second"),
            ("31st",)} <= entries["day_number"]
    assert {("monday",), ("tues",)} <= entries["day_name"]


def test_config_takes_files_and_shipped_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.txt").write_text("# my towns\nSpringfield\nShelbyville Heights\n")
    cfg = load_config(CONFIGS / "joint.yaml",
                      ["data.gazetteers={town: mine.txt, month_name: month_name}"])
    assert cfg.data.gazetteers == {"town": str(tmp_path / "mine.txt"),
                                   "month_name": "month_name"}
    loaded = load_gazetteers(cfg.data.gazetteers)
    assert loaded.lists["town"] == [("springfield",), ("shelbyville", "heights")]
    with pytest.raises(DataError) as info:
        load_gazetteers({"x": "no-such-list"})
    assert "shipped: " in info.value.detail and "city_name" in info.value.detail
    with pytest.raises(ConfigError, match="data.gazetteers: expected a mapping"):
        Config.from_dict({"data": {"gazetteers": ["a"]}})
    with pytest.raises(ConfigError, match="set data.gazetteers too"):
        Config.from_dict({"train": {"augment": 0.3}})


def test_features_reach_the_model_and_travel_in_the_checkpoint(tmp_path):
    from slotfill.models.checkpoint import load_checkpoint
    from slotfill.serving.predict import Predictor
    from slotfill.training.run import train
    cfg = load_config(CONFIGS / "joint.yaml", [
        *tiny_overrides(), "data.gazetteers={city_name: city_name, month_name: month_name}"])
    train(cfg, tmp_path)
    ckpt = load_checkpoint(tmp_path / "best.pt")
    assert ckpt.vocabs.gazetteers.names == ["city_name", "month_name"]
    model = ckpt.build_model()
    assert model.embedder.output_size == 16 + 50 + 4
    predictor = Predictor(tmp_path / "best.pt")
    split = encode_split([Example(("arrive", "taipei", "on", "nov", "2nd"), ())],
                         predictor.vocabs)
    assert split.features[0, :, 0].tolist() == [0, 1, 0, 0, 0]  # B-city at taipei
    assert split.features[0, :, 2].tolist() == [0, 0, 0, 1, 0]  # B-month at nov
    result = predictor.predict(["arrive Taipei on Nov 2nd"])[0]
    assert len(result["tags"]) == 5


def test_substitution_replaces_listed_slot_types_with_consistent_tags():
    corpus = read_corpus(TINY)
    gazetteers = Gazetteers({"city_name": [("taipei",), ("addis", "ababa")]})
    vocabs = Vocabs.build(corpus["train"], gazetteers=gazetteers)
    augment = SlotSubstitution(corpus["train"], 1.0, vocabs.tags, gazetteers, seed=1)
    assert augment.substituted_types() == ["city_name"]
    drawn = augment.draw()
    changed = [(a, b) for a, b in zip(corpus["train"], drawn) if a != b]
    assert changed
    seen_listed = False
    for before, after in changed:
        assert len(after.tokens) == len(after.tags)
        assert after.intent == before.intent
        from slotfill.data.bio import extract_spans
        kinds = [k for k, _, _ in extract_spans(after.tags)]
        assert kinds == [k for k, _, _ in extract_spans(before.tags)]
        for kind, start, end in extract_spans(after.tags):
            if not kind.endswith("city_name"):  # other types are left alone
                old = {k: before.tokens[s:e] for k, s, e in extract_spans(before.tags)}
                assert after.tokens[start:end] == old[kind]
            elif after.tokens[start:end] in (("taipei",), ("addis", "ababa")):
                seen_listed = True
    assert seen_listed
    again = SlotSubstitution(corpus["train"], 1.0, vocabs.tags, gazetteers, seed=1).draw()
    assert again == drawn  # the seed decides
    assert encode_split(drawn, vocabs, labels=True).tags is not None  # every tag is known


def test_export_takes_the_features_as_an_input(tmp_path):
    pytest.importorskip("onnxruntime")
    import json

    from slotfill.serving.export import export_onnx
    from slotfill.training.run import train
    cfg = load_config(CONFIGS / "joint.yaml", [
        *tiny_overrides(), "data.gazetteers={city_name: city_name, day_name: day_name}"])
    (tmp_path / "run").mkdir()
    train(cfg, tmp_path / "run")
    export_onnx(tmp_path / "run" / "best.pt", tmp_path / "m.onnx")
    info = json.loads((tmp_path / "m.vocab.json").read_text())
    assert [i["name"] for i in info["inputs"]][-1] == "features"
    assert set(info["gazetteers"]) == {"city_name", "day_name"}


def test_train_names_its_gazetteers_and_warns_when_nothing_is_substituted(tmp_path):
    from typer.testing import CliRunner

    from slotfill.cli import app
    (tmp_path / "colours.txt").write_text("red\ngreen\n")
    result = CliRunner().invoke(app, [
        "train", "joint", *tiny_overrides(), f"data.gazetteers={{colour: {tmp_path}/colours.txt}}",
        "train.augment=0.5", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "gazetteers: colour (2) entries" in result.stdout
    assert "no gazetteer is named after a slot type" in result.output
