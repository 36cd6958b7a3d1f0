"""Smoke tests: each benchmark runs and prints every figure. No speed thresholds here:
those belong in the benchmarks' own results, measured side by side."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT, TINY


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_speed_quick(atis_dir, tmp_path):
    output = tmp_path / "speed.md"
    result = run("speed.py", "--quick", "--atis", str(atis_dir), "--output", str(output))
    for figure in ("reference training", "slotfill training", "speed-up",
                   "CRF epoch / softmax epoch", "torch.mm", "model FLOP/s",
                   "reference tagging", "Predictor.tag", "Predictor.predict", "latency p50",
                   "latency p99", "import torch", "slotfill --help", "cold slotfill predict",
                   "peak RSS"):
        assert figure in result.stdout, figure
        assert figure in output.read_text(), figure


def test_accuracy_smoke(tmp_path):
    output = tmp_path / "accuracy.md"
    run("accuracy.py", "--data", str(TINY), "--configs", "bilstm.yaml", "joint.yaml",
        "--seeds", "2", "--jobs", "2", "--runs-dir", str(tmp_path / "runs"),
        "--output", str(output), "--set", "train.epochs=1", "model.hidden_size=8")
    table = output.read_text()
    assert "| `configs/bilstm.yaml` |" in table and "| `configs/joint.yaml` |" in table
    assert "| `configs/joint.yaml` x 2 | ensemble of its 2 seeds" in table
    assert "Stack-Propagation" in table
    assert "listed city recall | unlisted F1" in table
    assert table.count("| `configs/joint.yaml` x 2 |") == 2  # and in the unseen-city table
    assert "| `arrive Taipei on Nov 2nd` | `leave Taipei on Nov 2nd` |" in table
    assert "| ensemble of 2 |" in table
    assert "The ensemble minus its seed-1 member on test, paired bootstrap" in table
    assert (tmp_path / "runs" / "bilstm-seed1" / "metrics.json").is_file()


def test_unseen_city_sets_replace_every_city_by_one_the_corpus_never_had(tmp_path):
    sys.path.insert(0, str(ROOT))
    from benchmarks.unseen_cities import UNLISTED, city_spans, make_sets
    from slotfill.data.corpus import read_corpus
    original = read_corpus(TINY)
    words = {w for split in original.splits.values() for e in split for w in e.tokens}
    made = make_sets(TINY, tmp_path)
    with_cities = [e for e in original["test"] if city_spans(e.tags)]
    for name, folder in made.items():
        examples = read_corpus(folder, splits=("test",))["test"]
        assert len(examples) == len(with_cities)
        for before, after in zip(with_cities, examples):
            assert after.intent == before.intent
            assert len(city_spans(after.tags)) == len(city_spans(before.tags))
            for _, start, end in city_spans(after.tags):
                city = after.tokens[start:end]
                assert city[-1] not in words
                assert (" ".join(city) in UNLISTED) == (name == "unlisted")
    from_valid = make_sets(TINY, tmp_path / "valid", "valid")
    expected = sum(1 for e in original["valid"] if city_spans(e.tags))
    for folder in from_valid.values():
        assert len(read_corpus(folder, splits=("test",))["test"]) == expected


def test_serve_load_quick(trained_run, tmp_path):
    pytest.importorskip("fastapi")
    result = run("serve_load.py", "--quick", "--model", str(trained_run),
                 "--output", str(tmp_path / "serve.md"))
    for figure in ("requests/s", "p50 latency", "p99 latency", "errors"):
        assert figure in result.stdout
    assert "| errors | 0 |" in (tmp_path / "serve.md").read_text()


