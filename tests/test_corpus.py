from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TINY

from slotfill.data.corpus import detect_format, read_corpus
from slotfill.errors import DataError


def write_atis(root: Path, splits: dict[str, tuple[list[str], list[str], list[str] | None]]):
    for split, (words, tags, labels) in splits.items():
        folder = root / split
        folder.mkdir(parents=True)
        (folder / "seq.in").write_text("".join(w + "\n" for w in words))
        (folder / "seq.out").write_text("".join(t + "\n" for t in tags))
        if labels is not None:
            (folder / "label").write_text("".join(lab + "\n" for lab in labels))


GOOD = (["fly to boston", "leave denver"], ["O O B-toloc.city_name", "O B-fromloc.city_name"],
        ["atis_flight", "atis_flight"])


def test_reads_the_tiny_corpus():
    corpus = read_corpus(TINY)
    assert corpus.format == "atis"
    assert [len(corpus[s]) for s in ("train", "valid", "test")] == [80, 20, 20]
    first = corpus["train"][0]
    assert len(first.tokens) == len(first.tags) and first.intent


def test_dev_is_an_alias_of_valid_and_label_is_optional(tmp_path):
    write_atis(tmp_path, {"train": GOOD, "dev": (GOOD[0], GOOD[1], None), "test": GOOD})
    corpus = read_corpus(tmp_path)
    assert len(corpus["valid"]) == 2 and corpus["valid"][0].intent is None


def test_token_tag_mismatch_names_file_and_line(tmp_path):
    bad = (GOOD[0], ["O O B-toloc.city_name", "O"], GOOD[2])
    write_atis(tmp_path, {"train": GOOD, "valid": bad, "test": GOOD})
    with pytest.raises(DataError) as info:
        read_corpus(tmp_path)
    assert f"{tmp_path / 'valid' / 'seq.out'}:2: 1 tags for 2 tokens" in info.value.detail


def test_line_count_mismatches(tmp_path):
    write_atis(tmp_path, {"train": (GOOD[0], GOOD[1][:1], GOOD[2]),
                          "valid": (GOOD[0], GOOD[1], GOOD[2][:1]), "test": GOOD})
    with pytest.raises(DataError) as info:
        read_corpus(tmp_path)
    assert "train/seq.out: 1 lines but" in info.value.detail
    assert "valid/label: 1 lines but" in info.value.detail  # every problem at once


def test_non_utf8_file(tmp_path):
    write_atis(tmp_path, {"train": GOOD, "valid": GOOD, "test": GOOD})
    (tmp_path / "test" / "seq.in").write_bytes(b"fly to boston\nleave d\xe9nver\n")
    with pytest.raises(DataError, match="Cannot use the corpus") as info:
        read_corpus(tmp_path)
    assert "test/seq.in:2: not valid UTF-8" in info.value.detail


def test_missing_and_empty_splits(tmp_path):
    write_atis(tmp_path, {"train": GOOD, "test": ([], [], [])})
    with pytest.raises(DataError) as info:
        read_corpus(tmp_path)
    assert "missing split 'valid'" in info.value.detail
    assert "split 'test' is empty" in info.value.detail
    assert len(read_corpus(tmp_path, splits=("train", "valid"), optional=("valid",)).splits) == 1


def test_windows_line_endings_and_blank_lines(tmp_path):
    write_atis(tmp_path, {"train": GOOD, "valid": GOOD, "test": GOOD})
    (tmp_path / "train" / "seq.in").write_bytes(b"fly to boston\r\n\r\nleave denver\r\n")
    (tmp_path / "train" / "seq.out").write_bytes(
        b"O O B-toloc.city_name\r\n\r\nO B-fromloc.city_name\r\n")
    (tmp_path / "train" / "label").write_bytes(b"atis_flight\r\n\r\natis_flight\r\n")
    corpus = read_corpus(tmp_path)
    assert corpus["train"][1].tokens == ("leave", "denver")
    assert corpus["train"][1].tags == ("O", "B-fromloc.city_name")
    assert any("blank line" in w for w in corpus.warnings)


def test_conll_format(tmp_path):
    text = ("# intent: atis_flight\nfly O\nto O\nboston B-toloc.city_name\n\n"
            "leave X O\ndenver X B-fromloc.city_name\n")
    for name in ("train.txt", "valid.txt", "test.txt"):
        (tmp_path / name).write_text(text)
    assert detect_format(tmp_path) == "conll"
    corpus = read_corpus(tmp_path)
    assert corpus["train"][0].tokens == ("fly", "to", "boston")
    assert corpus["train"][0].intent == "atis_flight" and corpus["train"][1].intent is None
    assert corpus["train"][1].tags == ("O", "B-fromloc.city_name")


def test_conll_line_without_tag(tmp_path):
    for name in ("train", "valid", "test"):
        (tmp_path / name).write_text("fly O\nboston\n")
    with pytest.raises(DataError, match="Cannot use") as info:
        read_corpus(tmp_path)
    assert f"{tmp_path / 'train'}:2: expected a token and a tag" in info.value.detail


def test_no_corpus_here(tmp_path):
    with pytest.raises(DataError, match="No corpus found"):
        read_corpus(tmp_path)
    with pytest.raises(DataError, match="Corpus not found"):
        read_corpus(tmp_path / "missing")


def test_bundled_sample_corpus_is_found():
    corpus = read_corpus("bundled")
    assert len(corpus["train"]) == 4000


def test_real_atis(atis_dir):
    corpus = read_corpus(atis_dir)
    assert [len(corpus[s]) for s in ("train", "valid", "test")] == [4478, 500, 893]
    assert any("#" in e.intent for e in corpus["train"])
