"""`slotfill data convert`: lossless round trips, no overwriting, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, TINY
from typer.testing import CliRunner

from slotfill.cli import app
from slotfill.data.convert import convert_corpus
from slotfill.data.corpus import read_corpus
from slotfill.errors import UsageError

runner = CliRunner()
ATIS_FILES = [f"{s}/{n}" for s in ("train", "valid", "test") for n in ("seq.in", "seq.out",
                                                                      "label")]


def assert_same_files(a: Path, b: Path, names: list[str]) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize("via", ["jsonl", "conll", "tokens"])
def test_atis_round_trip_is_byte_identical_on_the_bundled_corpora(tmp_path, via):
    for source in (ROOT / "data", ROOT / "data" / "zh"):
        convert_corpus(source, tmp_path / via, via, force=True)
        back = convert_corpus(tmp_path / via, tmp_path / "back", "atis", force=True)
        assert back.warnings == []
        assert_same_files(source, tmp_path / "back", ATIS_FILES)


def test_atis_round_trip_on_real_atis(atis_dir, tmp_path):
    convert_corpus(atis_dir, tmp_path / "jsonl", "jsonl")
    convert_corpus(tmp_path / "jsonl", tmp_path / "atis", "atis")
    assert_same_files(atis_dir, tmp_path / "atis", ATIS_FILES)


def test_chinese_jsonl_keeps_its_text_unspaced(tmp_path):
    convert_corpus(ROOT / "data" / "zh", tmp_path / "j", "jsonl")
    first = (tmp_path / "j" / "train.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert '"text": "我打算星期二从温哥华出发"' in first


def test_refuses_to_overwrite_without_force_and_replaces_with_it(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(UsageError, match="exists already"):
        convert_corpus(TINY, out, "jsonl")
    assert (out / "mine.txt").read_text() == "keep"
    result = runner.invoke(app, ["data", "convert", str(TINY), str(out), "--to", "jsonl"])
    assert result.exit_code == 2 and "pass --force" in result.stderr
    result = runner.invoke(app, ["data", "convert", str(TINY), str(out), "--to", "jsonl",
                                 "--force"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["test.jsonl", "train.jsonl",
                                                    "valid.jsonl"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary leftovers


def test_a_failed_read_writes_nothing(tmp_path):
    bad = tmp_path / "bad"
    (bad / "train").mkdir(parents=True)
    (bad / "train" / "seq.in").write_text("fly to boston\n")
    (bad / "train" / "seq.out").write_text("O O\n")
    result = runner.invoke(app, ["data", "convert", str(bad), str(tmp_path / "out"),
                                 "--to", "conll"])
    assert result.exit_code == 1 and "seq.out:1: 2 tags for 3 tokens" in result.stderr
    assert not (tmp_path / "out").exists()


def test_what_a_format_cannot_keep_is_reported(tmp_path):
    src = tmp_path / "src"
    for split in ("train", "valid", "test"):
        (src / split).mkdir(parents=True)
        (src / split / "seq.in").write_text("fly to st.\n")
        (src / split / "seq.out").write_text("O O B-toloc\n")
    result = convert_corpus(src, tmp_path / "j", "jsonl")
    assert any("read back differently" in w and "'fly to st.' reads back as 'fly to st .'"
               in w for w in result.warnings)
    assert read_corpus(tmp_path / "j")["train"][0].tokens == ("fly", "to", "st", ".")


EXPORTS = ROOT / "tests" / "fixtures" / "exports"


def test_scheme_conversion_keeps_the_chunks(tmp_path):
    from slotfill.data.bio import detect_scheme, extract_spans
    source = read_corpus(EXPORTS / "bioes-zh")
    for scheme in ("bio", "bilou", "bioes"):
        out = tmp_path / scheme
        result = runner.invoke(app, ["data", "convert", str(EXPORTS / "bioes-zh"), str(out),
                                     "--to", "conll", "--scheme", scheme])
        assert result.exit_code == 0, result.output
        converted = read_corpus(out)
        assert detect_scheme(e.tags for e in converted["train"]) == scheme
        for split in ("train", "valid", "test"):
            assert [extract_spans(e.tags) for e in converted[split]] == \
                [extract_spans(e.tags) for e in source[split]]
    first = (tmp_path / "bio" / "train.txt").read_text(encoding="utf-8").split("\n")[:2]
    assert first == ["高 B-NAME", "勇 I-NAME"]
    result = runner.invoke(app, ["data", "convert", str(EXPORTS / "bioes-zh"),
                                 str(tmp_path / "j"), "--to", "jsonl", "--scheme", "bio"])
    assert result.exit_code == 2 and "jsonl keeps spans, not tags" in result.stderr


def test_convert_repairs_as_data_check_does_and_strict_refuses(tmp_path):
    resumes = EXPORTS / "doccano" / "resumes.jsonl"
    args = ["data", "convert", str(resumes), str(tmp_path / "out"), "--to", "conll",
            "--split", "0.6,0.2,0.2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    converted = [line.removeprefix("warning: ") for line in result.stderr.splitlines()]
    checked = runner.invoke(app, ["data", "check", str(resumes), "--split", "0.6,0.2,0.2"])
    repairs = [line.removeprefix("warning: ") for line in checked.stdout.splitlines()
               if line.startswith("warning: ")]
    assert repairs and all(line in converted for line in repairs)
    strict = runner.invoke(app, [*args[:3], str(tmp_path / "strict"), *args[4:], "--strict"])
    assert strict.exit_code == 1 and "data.strict=true: 4 repairs refused" in strict.stderr
    assert not (tmp_path / "strict").exists()
