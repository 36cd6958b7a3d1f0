"""The shipped sample corpus in data/ is exactly what slotfill.data.sample_corpus generates."""

from __future__ import annotations

from pathlib import Path

import pytest

from slotfill.data.sample_corpus import generate, write_corpus
from slotfill.data.sample_corpus_zh import HELDOUT_CITIES

DATA = Path(__file__).resolve().parents[1] / "data"
SPLITS = {"train": 4000, "valid": 500, "test": 500}
FILES = ("seq.in", "seq.out", "label")


def _read(split: str) -> tuple[list[str], list[str], list[str]]:
    return tuple((DATA / split / name).read_text(encoding="utf-8").split("\n")[:-1]
                 for name in FILES)


def _is_valid_bio(tags: list[str]) -> bool:
    previous = "O"
    for tag in tags:
        if tag != "O":
            prefix, _, label = tag.partition("-")
            if prefix not in ("B", "I") or not label:
                return False
            if prefix == "I" and previous[2:] != label:
                return False
        previous = tag
    return True


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    write_corpus(tmp_path)
    for split in SPLITS:
        for name in FILES:
            shipped = (DATA / split / name).read_bytes()
            assert (tmp_path / split / name).read_bytes() == shipped, f"{split}/{name}"


@pytest.mark.parametrize("split", list(SPLITS))
def test_files_are_well_formed(split: str) -> None:
    for name in FILES:
        raw = (DATA / split / name).read_bytes()
        assert raw.endswith(b"\n") and b"\r" not in raw
        raw.decode("utf-8")
    tokens, tags, labels = _read(split)
    assert len(tokens) == len(tags) == len(labels) == SPLITS[split]
    for line_tokens, line_tags, label in zip(tokens, tags, labels):
        words, bio = line_tokens.split(" "), line_tags.split(" ")
        assert len(words) == len(bio) and 3 <= len(words) <= 25, line_tokens
        assert all(words) and line_tokens == line_tokens.lower()
        assert _is_valid_bio(bio), line_tags
        assert label and " " not in label and label.startswith("atis_")


def test_bio_checker_rejects_bad_sequences() -> None:
    assert _is_valid_bio(["O", "B-x", "I-x", "B-y"])
    assert not _is_valid_bio(["O", "I-x"])
    assert not _is_valid_bio(["B-x", "I-y"])
    assert not _is_valid_bio(["X-x"])


def test_taipei_is_origin_and_destination_in_train() -> None:
    tokens, tags, _ = _read("train")
    roles = {tag for words, bio in zip(tokens, tags)
             for word, tag in zip(words.split(), bio.split()) if word == "taipei"}
    assert {"B-toloc.city_name", "B-fromloc.city_name"} <= roles


def test_dev_and_test_contain_unseen_words() -> None:
    train_vocab = {word for line in _read("train")[0] for word in line.split()}
    for split in ("valid", "test"):
        words = {word for line in _read(split)[0] for word in line.split()}
        assert words - train_vocab, split


def test_no_utterance_shared_between_splits() -> None:
    texts = {split: set(_read(split)[0]) for split in SPLITS}
    assert not texts["train"] & texts["valid"]
    assert not texts["train"] & texts["test"]
    assert not texts["valid"] & texts["test"]


def test_left_context_contrast_and_distinct_cities() -> None:
    examples = generate()["train"]
    for tokens, tags, _ in examples:
        origin = [w for w, t in zip(tokens, tags) if t.endswith("fromloc.city_name")]
        destination = [w for w, t in zip(tokens, tags) if t.endswith("toloc.city_name")]
        assert not origin or origin != destination, tokens
    short = {(tokens[0], tags[1], tags[3]) for tokens, tags, _ in examples
             if len(tokens) == 5 and tokens[0] in ("arrive", "leave") and tokens[2] == "on"}
    assert ("arrive", "B-toloc.city_name", "B-arrive_date.month_name") in short
    assert ("leave", "B-fromloc.city_name", "B-depart_date.month_name") in short
    assert all(("arrive" if "toloc" in role else "leave") == verb for verb, role, _ in short)


def test_chinese_regeneration_is_byte_identical(tmp_path: Path) -> None:
    write_corpus(tmp_path, language="zh")
    for split in SPLITS:
        for name in FILES:
            shipped = (DATA / "zh" / split / name).read_bytes()
            assert (tmp_path / split / name).read_bytes() == shipped, f"zh {split}/{name}"


def test_chinese_corpus_is_characters_with_the_english_labels() -> None:
    examples = generate(language="zh")
    assert [len(examples[s]) for s in SPLITS] == [3000, 400, 400]
    english_slots = {t[2:] for _, tags, _ in generate()["train"] for t in tags if t != "O"}
    for tokens, tags, intent in examples["train"]:
        assert _is_valid_bio(tags) and intent.startswith("atis_")
        assert all(len(t) == 1 or t.isdigit() for t in tokens), tokens
        assert {t[2:] for t in tags if t != "O"} <= english_slots
    pairs = {("".join(tokens[:tokens.index("台")]).endswith(("到达", "抵达", "飞到")),
              tags[tokens.index("台")]) for tokens, tags, _ in examples["train"]
             if "台" in tokens and tokens[tokens.index("台") + 1] == "北"}
    assert (True, "B-toloc.city_name") in pairs and (False, "B-fromloc.city_name") in pairs
    assert (True, "B-fromloc.city_name") not in pairs  # arriving makes it the destination
    def cities(split: str) -> set[str]:
        found = set()
        for tokens, tags, _ in examples[split]:
            for i, tag in enumerate(tags):
                if tag.endswith("city_name") and tag.startswith("B-"):
                    end = next((j for j in range(i + 1, len(tags)) if tags[j][0] != "I"),
                               len(tags))
                    found.add("".join(tokens[i:end]))
        return found
    assert not cities("train") & set(HELDOUT_CITIES)
    assert cities("test") & set(HELDOUT_CITIES)
