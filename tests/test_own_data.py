"""Each corpus format trains, evaluates and predicts end to end through the CLI; the same
corpus in two formats trains to the same scores; the Chinese sample corpus trains by its
config and tags Chinese text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, TINY, tiny_overrides
from typer.testing import CliRunner

from slotfill.cli import app
from slotfill.data.bio import extract_spans
from slotfill.data.convert import convert_corpus
from slotfill.data.corpus import read_corpus

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def massive_lines(split: str, partition: str, locale: str = "en-US") -> list[str]:
    """The tiny corpus's split as MASSIVE JSON Lines (`[slot : words]` markup)."""
    lines = []
    for e in read_corpus(TINY)[split]:
        words = list(e.tokens)
        for kind, start, end in reversed(extract_spans(e.tags)):
            words[start:end] = [f"[{kind} : {' '.join(words[start:end])}]"]
        lines.append(json.dumps({"locale": locale, "partition": partition,
                                 "intent": e.intent, "utt": " ".join(e.tokens),
                                 "annot_utt": " ".join(words)}))
    return lines


def rasa_file(path: Path) -> Path:
    """Every utterance of the tiny corpus as Rasa NLU data, entities marked up."""
    by_intent: dict[str, list[str]] = {}
    for split in ("train", "valid", "test"):
        for e in read_corpus(TINY)[split]:
            words = list(e.tokens)
            for kind, start, end in reversed(extract_spans(e.tags)):
                words[start:end] = [f"[{' '.join(words[start:end])}]({kind})"]
            by_intent.setdefault(e.intent, []).append(" ".join(words))
    lines = ["nlu:"]
    for intent, examples in by_intent.items():
        lines += [f"- intent: {intent}", "  examples: |"] + [f"    - {x}" for x in examples]
    path.write_text("\n".join(lines) + "\n")
    return path


def corpus_in(fmt: str, root: Path) -> tuple[Path, list[str]]:
    """The tiny corpus in `fmt` under `root`, and the overrides that read it."""
    if fmt in ("atis", "conll", "jsonl", "tokens"):
        convert_corpus(TINY, root / fmt, fmt)
        return root / fmt, []
    if fmt == "massive":
        (root / "massive").mkdir()
        lines = sum((massive_lines(s, p) for s, p in (("train", "train"), ("valid", "dev"),
                                                       ("test", "test"))), [])
        (root / "massive" / "en-US.jsonl").write_text("\n".join(lines) + "\n")
        return root / "massive", ["data.locale=en-US"]
    return rasa_file(root / "nlu.yml"), ["data.split=0.7,0.15,0.15"]


@pytest.mark.parametrize("fmt", ["atis", "conll", "jsonl", "tokens", "massive", "rasa"])
def test_each_format_trains_evaluates_and_predicts(tmp_path, fmt):
    path, extra = corpus_in(fmt, tmp_path)
    overrides = [o for o in tiny_overrides(epochs=2) if not o.startswith("data.path")]
    run = tmp_path / "run"
    result = invoke("train", "joint", f"data.path={path}", *overrides, *extra,
                    "--output", run)
    assert f"({fmt})" in result.stdout  # the start line names the detected format
    scores = json.loads(invoke("eval", "--model", run, "--json").stdout)
    assert 0 <= scores["f1"] <= 1 and "intent_accuracy" in scores
    predicted = json.loads(invoke("predict", "--model", run, "--json",
                                  "Flights from Boston to Taipei").stdout)
    assert predicted["tokens"] == ["Flights", "from", "Boston", "to", "Taipei"]
    assert predicted["intent"]


def test_the_same_corpus_as_jsonl_trains_to_the_same_scores(tmp_path):
    convert_corpus(TINY, tmp_path / "jsonl", "jsonl")
    overrides = [o for o in tiny_overrides(epochs=2) if not o.startswith("data.path")]
    scores = []
    for name, path in (("atis", TINY), ("jsonl", tmp_path / "jsonl")):
        invoke("train", "bilstm", f"data.path={path}", *overrides, "--output",
               tmp_path / f"run-{name}")
        scores.append(json.loads((tmp_path / f"run-{name}" / "metrics.json").read_text()))
    assert scores[0]["dev"] == scores[1]["dev"] and scores[0]["test"] == scores[1]["test"]


def test_chinese_sample_corpus_trains_by_its_config(tmp_path):
    run = tmp_path / "run"
    result = invoke("train", "bilstm-zh", "train.epochs=1", "model.hidden_size=16",
                    "model.embedding_dim=16", "train.threads=1", "train.device=cpu",
                    "--output", run)
    assert "data/zh (atis): train 3000, valid 400, test 400" in result.stdout
    predicted = json.loads(invoke("predict", "--model", run, "--json",
                                  "我想11月2日到达台北").stdout)
    assert predicted["tokens"] == ["我", "想", "11", "月", "2", "日", "到", "达", "台", "北"]
    for slot in predicted["slots"]:
        assert predicted["text"][slot["start"]:slot["end"]] == slot["value"]


def test_bundled_zh_names_the_chinese_corpus():
    corpus = read_corpus("bundled-zh")
    assert corpus.path == ROOT / "data" / "zh"
    assert corpus["train"][0].tokens[:3] == ("我", "打", "算")
