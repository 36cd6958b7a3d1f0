from __future__ import annotations

import json
import shutil

from conftest import TINY
from typer.testing import CliRunner

from slotfill.cli import app
from slotfill.data.bio import transition_problems
from slotfill.data.check import check_corpus

runner = CliRunner()


def test_transition_problems_in_each_scheme():
    assert transition_problems(("B-a", "I-a", "O")) == []
    assert transition_problems(("I-a", "O", "B-a", "I-b")) == [
        "token 1: I-a after the start", "token 4: I-b after B-a"]
    assert transition_problems(("I-a", "B-a", "O", "I-b"), "iob1") == []
    assert transition_problems(("B-a", "O", "B-b"), "iob1") == [
        "token 1: B-a after the start", "token 3: B-b after O"]
    assert transition_problems(("B-a", "E-a", "S-b", "O"), "bioes") == []
    assert transition_problems(("B-a", "O", "E-a", "B-b"), "bioes") == [
        "token 2: O after B-a", "token 3: E-a after O", "token 4: B-b ends the utterance"]
    assert transition_problems(("U-a", "B-b", "I-b", "L-b"), "bilou") == []


def test_clean_corpus_report(tmp_path):
    report = check_corpus(TINY)
    assert not report.errors
    assert report.splits["train"].utterances == 80
    assert report.splits["train"].tokens == sum(report.splits["train"].tag_counts.values())
    assert set(report.oov_rate) == {"valid", "test"}
    result = runner.invoke(app, ["data", "check", str(TINY)])
    assert result.exit_code == 0, result.output
    assert "no errors" in result.stdout and "toloc.city_name" in result.stdout
    parsed = json.loads(runner.invoke(app, ["data", "check", str(TINY), "--json"]).stdout)
    assert parsed["splits"]["valid"]["utterances"] == 20


def test_broken_corpus_lists_every_problem(tmp_path):
    corpus = tmp_path / "c"
    shutil.copytree(TINY, corpus)
    out = corpus / "train" / "seq.out"
    lines = out.read_text().splitlines()
    lines[2] = "I-toloc.city_name " + " ".join(lines[2].split()[1:])  # invalid BIO (soft)
    lines[6] = lines[6].rsplit(" ", 1)[0]  # one tag short (hard)
    out.write_text("\n".join(lines) + "\n")
    (corpus / "valid" / "label").write_text("atis_flight\n")  # line count differs (hard)
    (corpus / "test" / "seq.in").write_bytes(b"caf\xe9\n")  # not UTF-8 (hard)
    report = check_corpus(corpus)
    text = "\n".join(report.errors)
    assert f"{out}:7: " in text and "valid/label: 1 lines" in text
    assert "test/seq.in:1: not valid UTF-8" in text
    assert any("invalid BIO" in w and f"{out}:3" in w for w in report.warnings)
    result = runner.invoke(app, ["data", "check", str(corpus)])
    assert result.exit_code == 1
    assert "training refuses this corpus" in result.stdout


def test_overlap_and_unseen_labels_are_warnings(tmp_path):
    corpus = tmp_path / "c"
    shutil.copytree(TINY, corpus)
    for name in ("seq.in", "seq.out"):
        first = (corpus / "train" / name).read_text().splitlines()[0]
        path = corpus / "test" / name
        path.write_text(first + "\n" + path.read_text())
    label = corpus / "test" / "label"
    label.write_text("atis_brand_new\n" + label.read_text())
    report = check_corpus(corpus)
    assert not report.errors
    warnings = "\n".join(report.warnings)
    assert "1 utterances of test also occur in train" in warnings
    assert "intents only in test, never in train: atis_brand_new" in warnings
