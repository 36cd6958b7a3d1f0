"""Deployment benchmark: float against int8 weights, in PyTorch (`slotfill quantize`) and
in ONNX Runtime (`slotfill export --quantize int8`), for the BiLSTM, `joint`, the MiniLM
tagger and the student distilled from it, on ATIS test.

    python benchmarks/deploy.py [--data DIR] [--reuse runs/atis runs/pretrained]
                                [--runs-dir runs/deploy]
                                [--output benchmarks/results/deploy.md] [--quick]

Each row's float run is reused from the --reuse directories (ROW-seed1, as
benchmarks/accuracy.py and benchmarks/pretrained.py write them) or, for `bilstm` and
`joint`, trained into --runs-dir with dev-based early stopping (benchmarks.accuracy.
train_once: a finished run there is reused); the MiniLM tagger and its student are only
reused (benchmarks/pretrained.py trains them; a row without its run is left out, saying
so). The int8 run and both ONNX files go to --runs-dir. Per model and runtime: the file's
size, the median time to tag one test utterance (300 of them, 1 thread; from its tokens to
tag ids, tokenisation and decoding included, the same work in both runtimes), the
throughput of tagging the test set in batches of 64 (2 threads, the fastest of 3 rounds),
and test slot F1 and intent accuracy. Run it on an otherwise idle machine. `--quick`
trains tiny bilstm and joint runs on the tiny test corpus, to check the script end to end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import DEFAULT_ATIS, train_once  # noqa: E402
from benchmarks.machine import command_line, describe, load_average, shown_path  # noqa: E402

QUICK = ("train.epochs=2", "model.hidden_size=16", "model.embedding_dim=16")
BATCH = 64


class Row(NamedTuple):
    name: str  # its float run is NAME-seed1
    label: str
    config: str | None  # configs/ file to train it from when no run is found; None: reuse only


ROWS = [
    Row("bilstm", "BiLSTM (`configs/bilstm.yaml`)", "bilstm.yaml"),
    Row("joint", "`joint` (BiLSTM, char CNN, gazetteers, CRF, intent)", "joint.yaml"),
    Row("minilm", "MiniLM tagger (`configs/minilm.yaml`)", None),
    Row("student-minilm", "`joint` student distilled from MiniLM", None),
]
TARGETS = {"f1": 0.3, "intent": 0.3, "size": 0.40, "minilm_speedup": 2.0}


def find_run(row: Row, reuse: list[Path], runs_dir: Path, data: Path, quick: bool) -> Path | None:
    """The row's finished float run: found in --reuse, or trained into --runs-dir."""
    from slotfill.training.rundir import RunDir

    for folder in ([] if quick else reuse):
        run = folder / f"{row.name}-seed1"
        if RunDir(run).read_status().get("state") == "finished":
            return run
    if row.config is None:
        return None
    run = runs_dir / f"{row.name}-seed1"

    def config():
        from slotfill.config import load_config

        overrides = [f"data.path={data}", "train.seed=1", "train.threads=1",
                     "train.report=false", *(QUICK if quick else ())]
        return load_config(ROOT / "configs" / row.config, overrides)
    train_once(run, config)
    return run


def int8_run(run: Path, runs_dir: Path, name: str) -> Path:
    from slotfill.serving.quantize import quantize_run
    from slotfill.training.rundir import RunDir

    out = runs_dir / f"{name}-int8"
    if RunDir(out).read_status().get("state") != "finished":
        quantize_run(run, out, force=True)
    return out


def onnx_files(run: Path, runs_dir: Path, name: str) -> tuple[Path, Path] | str:
    """(float graph, int8 graph), exported once; or why there are none."""
    from slotfill.errors import SlotfillError
    from slotfill.serving.export import export_onnx

    files = runs_dir / f"{name}.onnx", runs_dir / f"{name}-int8.onnx"
    try:
        for path, precision in zip(files, (None, "int8")):
            if not path.is_file():
                export_onnx(run / "best.pt", path, force=True, quantize=precision)
    except SlotfillError as exc:
        return exc.title
    return files


def torch_tagger(checkpoint: Path):
    """encode_split -> tags, intents: the PyTorch model over encoded utterances."""
    import torch

    from slotfill.data.batching import make_batch
    from slotfill.models.checkpoint import load_checkpoint

    model = load_checkpoint(checkpoint).build_model("cpu")

    def tag(split):
        with torch.inference_mode():
            tags, intents = model.decode(make_batch(split, torch.arange(len(split))))
        return tags.tolist(), intents.tolist() if intents is not None else None
    return tag


def onnx_tagger(graph: Path, threads: int):
    import onnxruntime

    from slotfill.serving.export import feeds

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(graph), options,
                                           providers=["CPUExecutionProvider"])

    def tag(split):
        out = session.run(None, feeds(split))
        return out[0].tolist(), out[1].tolist() if len(out) > 1 else None
    return tag


def measure(make_tagger, vocabs, examples, reps: int) -> dict:
    """p50 of one utterance (1 thread), batch-64 throughput (2 threads), test scores."""
    import torch

    from slotfill.analysis.metrics import Counts
    from slotfill.data.batching import encode_split

    torch.set_num_threads(1)
    tag = make_tagger(1)
    for example in examples[:20]:  # warm-up
        tag(encode_split([example], vocabs))
    times = []
    for example in examples[:reps]:
        started = time.perf_counter()
        tag(encode_split([example], vocabs))
        times.append(time.perf_counter() - started)
    torch.set_num_threads(2)
    tag = make_tagger(2)
    batches = [examples[i:i + BATCH] for i in range(0, len(examples), BATCH)]
    rounds, counts = [], Counts()
    for round_ in range(3):
        started = time.perf_counter()
        found = [(batch, tag(encode_split(batch, vocabs))) for batch in batches]
        rounds.append(time.perf_counter() - started)
    for batch, (tags, intents) in found:
        for i, example in enumerate(batch):
            predicted = vocabs.tags.decode(tags[i][:len(example.tokens)])
            intent = vocabs.intents.itos[intents[i]] if intents is not None else None
            counts.add(example.tags, predicted, example.intent, intent)
    scores = counts.scores()
    return {"p50_ms": 1000 * statistics.median(times),
            "throughput": len(examples) / min(rounds), "f1": 100 * scores["f1"],
            "intent": 100 * scores["intent_accuracy"] if "intent_accuracy" in scores else None}


def benchmark_row(row: Row, run: Path, runs_dir: Path, examples, reps: int) -> dict:
    from slotfill.models.checkpoint import load_checkpoint

    vocabs = load_checkpoint(run / "best.pt").vocabs
    quantized = int8_run(run, runs_dir, row.name)
    results = {}
    for precision, folder in (("float", run), ("int8", quantized)):
        checkpoint = folder / "best.pt"
        results[("PyTorch", precision)] = {
            "bytes": checkpoint.stat().st_size,
            **measure(lambda threads, c=checkpoint: torch_tagger(c), vocabs, examples, reps)}
    graphs = onnx_files(run, runs_dir, row.name)
    if isinstance(graphs, str):
        return {"results": results, "onnx_note": graphs}
    for precision, graph in zip(("float", "int8"), graphs):
        results[("ONNX Runtime", precision)] = {
            "bytes": graph.stat().st_size,
            **measure(lambda threads, g=graph: onnx_tagger(g, threads), vocabs, examples,
                      reps)}
    return {"results": results, "onnx_note": None}


def render(rows: dict[str, dict], missing: dict[str, str], args, seconds: float) -> str:
    lines = [
        "# Deployment: float and int8 weights, PyTorch and ONNX Runtime", "",
        f"Command: `{command_line()}`  ", f"Date: {date.today().isoformat()}  ",
        f"Machine: {describe()}; load average at the end {load_average()}  ",
        f"Corpus: `{shown_path(args.data)}` test ({rows and next(iter(rows.values()))['n']} "
        f"utterances); {seconds / 60:.1f} minutes", "",
        "int8 in PyTorch: `slotfill quantize` (int8 weights per row, torch's dynamic int8 "
        "kernels for linear, LSTM and GRU layers); in ONNX Runtime: `slotfill export "
        "--quantize int8` (onnxruntime.quantization.quantize_dynamic). p50: one test "
        "utterance from its tokens to tag ids, 1 thread; batch 64: test utterances/s, "
        "2 threads; size: best.pt or the .onnx file.", "",
        "| model | runtime | weights | size (MB) | of float | p50 (ms) | speed-up | "
        "batch 64 (utt./s) | slot F1 | intent acc. |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    checks = []
    for name, row in rows.items():
        for (runtime, precision), r in row["results"].items():
            base = row["results"][(runtime, "float")]
            intent = f"{r['intent']:.2f}" if r["intent"] is not None else ""
            lines.append(
                f"| {row['label']} | {runtime} | {precision} | {r['bytes'] / 1e6:.2f} | "
                f"{r['bytes'] / base['bytes']:.0%} | {r['p50_ms']:.2f} | "
                f"{base['p50_ms'] / r['p50_ms']:.2f}x | {r['throughput']:.0f} | "
                f"{r['f1']:.2f} | {intent} |")
            if precision == "int8":
                checks.append(check(name, runtime, r, base))
        if row["onnx_note"]:
            lines.append(f"| {row['label']} | ONNX Runtime | | | | | | | | "
                         f"not exported: {row['onnx_note']} |")
    lines += ["", "## Targets", "",
              f"int8 within {TARGETS['f1']} slot F1 and {TARGETS['intent']} intent accuracy "
              f"of float, at most {TARGETS['size']:.0%} of the float size; the MiniLM tagger "
              f"at least {TARGETS['minilm_speedup']:.0f}x its float single-utterance speed "
              "in one runtime.", ""]
    lines += [f"- {line}" for line in checks]
    if "minilm" in rows:
        best = max(row_speedups(rows["minilm"]))
        verdict = "met" if best >= TARGETS["minilm_speedup"] else "missed"
        lines.append(f"- MiniLM tagger: best int8 speed-up {best:.2f}x ({verdict})")
    lines += [f"- {name}: left out, {why}" for name, why in missing.items()]
    return "\n".join(lines) + "\n"


def check(name: str, runtime: str, r: dict, base: dict) -> str:
    f1 = r["f1"] - base["f1"]
    intent = (r["intent"] - base["intent"]) if r["intent"] is not None else 0.0
    size = r["bytes"] / base["bytes"]
    ok = abs(f1) <= TARGETS["f1"] and abs(intent) <= TARGETS["intent"] and \
        size <= TARGETS["size"]
    return (f"{name}, {runtime}: slot F1 {f1:+.2f}, intent {intent:+.2f}, size {size:.0%}: "
            f"{'met' if ok else 'missed'}")


def row_speedups(row: dict) -> list[float]:
    return [row["results"][(rt, "float")]["p50_ms"] / r["p50_ms"]
            for (rt, precision), r in row["results"].items() if precision == "int8"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_ATIS)
    parser.add_argument("--reuse", type=Path, nargs="*",
                        default=[ROOT / "runs" / "atis", ROOT / "runs" / "pretrained"],
                        help="directories whose ROW-seed1 runs are used as they are")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "deploy")
    parser.add_argument("--output", type=Path, default=None,
                        help="default: benchmarks/results/deploy.md (--quick: in --runs-dir)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny runs on the tiny test corpus: checks the script, no figures")
    args = parser.parse_args()
    if args.quick:
        args.data = ROOT / "tests" / "assets" / "tiny"
    output = args.output or (args.runs_dir / "deploy-quick.md" if args.quick else
                             ROOT / "benchmarks" / "results" / "deploy.md")
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    from slotfill.threads import set_waiting

    set_waiting("passive")  # as `slotfill predict` and `serve` run (before torch starts)
    from slotfill.data.corpus import read_corpus

    examples = list(read_corpus(args.data, "atis", splits=("test",))["test"])
    started = time.time()
    rows, missing = {}, {}
    for row in ROWS:
        run = find_run(row, args.reuse, args.runs_dir.resolve(), args.data.resolve(),
                       args.quick)
        if run is None:
            missing[row.name] = (f"no finished {row.name}-seed1 in "
                                 f"{', '.join(shown_path(p) for p in args.reuse)} "
                                 "(benchmarks/pretrained.py trains it)")
            continue
        print(f"{row.name}: {shown_path(run)}", flush=True)
        rows[row.name] = {"label": row.label, "n": len(examples),
                          **benchmark_row(row, run, args.runs_dir, examples,
                                          20 if args.quick else 300)}
    text = render(rows, missing, args, time.time() - started)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
