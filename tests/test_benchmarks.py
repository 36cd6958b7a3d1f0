"""Smoke tests: each benchmark runs and prints every figure. No speed thresholds here:
those belong in the benchmarks' own results, measured side by side."""

from __future__ import annotations

import re
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
    # the shared-machine rows run in test_neighbours_quick (torch's spinning threads can
    # take minutes there on a busy machine)
    result = run("speed.py", "--quick", "--no-shared", "--atis", str(atis_dir),
                 "--output", str(output))
    for figure in ("reference training", "slotfill training", "speed-up",
                   "CRF epoch / softmax epoch", "torch.mm", "model FLOP/s",
                   "reference tagging", "Predictor.tag", "Predictor.predict", "latency p50",
                   "latency p99", "import torch", "slotfill --help", "cold slotfill predict",
                   "peak RSS", "reference loop end to end", "`slotfill train` end to end",
                   "end-to-end speed-up", "`slotfill train` start-up", "`slotfill train` report"):
        assert figure in result.stdout, figure
        assert figure in output.read_text(), figure


def test_speed_on_cuda_fails_clearly_without_a_gpu(atis_dir, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--device",
                             "cuda", "--atis", str(atis_dir), "--output",
                             str(tmp_path / "out.md")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1 and "--device cuda needs a CUDA device" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out.md").exists()


def test_neighbours_quick(atis_dir):
    result = run("neighbours.py", "--quick", "--atis", str(atis_dir), "--policies", "slotfill")
    for figure in ("slotfill's default (train.threads=0), beside none: epochs 1 / 2 / 3",
                   "slotfill's default (train.threads=0), beside busy loop: epochs 1 / 2 / 3",
                   "slotfill's default (train.threads=0): epoch beside busy loop / idle epoch"):
        assert figure in result.stdout, result.stdout
    # what each run had in force (the count follows this machine's free cores)
    assert re.search(r"threads: \d \(following the free cores\), waiting: active",
                     result.stdout), result.stdout


def test_accuracy_smoke(tmp_path):
    output = tmp_path / "accuracy.md"
    run("accuracy.py", "--data", str(TINY), "--configs", "bilstm.yaml", "joint.yaml",
        "--seeds", "2", "--jobs", "2", "--runs-dir", str(tmp_path / "runs"),
        "--output", str(output), "--set", "train.epochs=1", "model.hidden_size=8")
    table = output.read_text()
    assert "| `configs/bilstm.yaml` |" in table and "| `configs/joint.yaml` |" in table
    assert "| `configs/joint.yaml` `model.refine=true` |" in table  # the new option
    assert "| `configs/joint.yaml` x 2 | ensemble of its 2 seeds" in table
    assert "| `configs/joint.yaml` `model.refine=true` x 2 | ensemble" in table
    assert "| config | dev slot F1 | dev intent acc. |" in table
    assert "Stack-Propagation" in table and "SlotRefine" in table
    assert "| intent acc. | target | intent acc. (string) |" in table
    assert "listed city recall | unlisted F1" in table
    assert table.count("| `configs/joint.yaml` x 2 |") == 3  # and in the dev, unseen tables
    assert "minus the published results" in table and "| Wu et al. 2020, SlotRefine" in table
    assert "| `arrive Taipei on Nov 2nd` | `leave Taipei on Nov 2nd` |" in table
    assert "| ensemble of 2 |" in table
    assert "The ensemble of `joint` minus its seed-1 member on test, paired bootstrap" in table
    assert "`joint-refine` minus `joint` on test" in table and "- ensembles: f1" in table
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
    for figure in ("one keep-alive client (http.client), p50 latency",
                   "one keep-alive client (httpx.Client), p50 latency", "requests/s",
                   "p50 latency", "p99 latency", "server CPU per request"):
        assert figure in result.stdout, figure
    table = (tmp_path / "serve.md").read_text()
    for client in ("lean", "httpx"):
        assert f"| 16 concurrent clients ({client}): errors | 0 | 0 |" in table, table
    overload = "256 concurrent clients (lean, overload)"
    assert f"| {overload}: errors | 0 | 0 |" in table, table
    for figure in ("share answered 503 (%)", "p99 latency of accepted requests (ms)"):
        assert f"| {overload}: {figure} |" in table, table




def test_report_speed_smoke(trained_run, tmp_path):
    output = tmp_path / "report.md"
    result = run("report_speed.py", "--model", str(trained_run), "--repeats", "1",
                 "--output", str(output))
    for figure in ("eval with confidences", "error analysis", "curves (inline and file)",
                   "page (HTML)", "`slotfill report` (fresh process)",
                   "the report at the end of `slotfill train`"):
        assert figure in result.stdout and figure in output.read_text(), figure


def test_wall_smoke(tmp_path):
    output = tmp_path / "wall.md"
    run("wall.py", "--skip-suite", "--set", f"data.path={TINY}", "train.epochs=1",
        "model.hidden_size=8", "train.report=false", "--output", str(output))
    assert "| `slotfill train` (default config" in output.read_text()


def test_chinese_smoke(tmp_path):
    output = tmp_path / "zh.md"
    run("chinese.py", "--set", "train.epochs=1", "model.hidden_size=8", "train.report=false",
        "--output", str(output))
    written = output.read_text(encoding="utf-8")
    assert "| 1 (best) |" in written and "| 我想11月2日到达台北 |" in written


def test_deploy_quick(tmp_path):
    pytest.importorskip("onnxruntime")
    output = tmp_path / "deploy.md"
    result = run("deploy.py", "--quick", "--runs-dir", str(tmp_path / "runs"),
                 "--output", str(output))
    table = output.read_text()
    assert table in result.stdout
    for model in ("BiLSTM (`configs/bilstm.yaml`)", "`joint` (BiLSTM"):
        for runtime in ("PyTorch", "ONNX Runtime"):
            for weights in ("float", "int8"):
                assert f"| {model}" in table and f"| {runtime} | {weights} |" in table
    assert "| model | runtime | weights | size (MB) | of float | p50 (ms) |" in table
    assert "- joint, PyTorch: slot F1" in table and "minilm: left out" in table
    assert (tmp_path / "runs" / "joint-int8" / "quantization.json").is_file()
    assert (tmp_path / "runs" / "joint-int8.onnx").is_file()


def test_scale_quick(atis_dir, tmp_path):
    output = tmp_path / "scale.md"
    result = run("scale.py", "--quick", "--atis", str(atis_dir), "--runs-dir",
                 str(tmp_path / "runs"), "--output", str(output))
    for figure in ("`predict --file`, 20,000 lines: peak RSS", "first tenth of the time",
                   "plain loop, one model call per line", "`--workers 2` / one process",
                   "`data check`, ATIS train x 3", "one `bilstm` epoch, ATIS train x 3",
                   "epoch utterances/s, ATIS train x 3 / ATIS"):
        assert figure in result.stdout, figure
        assert figure in output.read_text(), figure
