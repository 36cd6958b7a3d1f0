"""`slotfill quantize RUN --output RUN_INT8`: a trained run with int8 weights, as a run.

The new directory is an ordinary run that eval, predict, serve, export's refusal and
`slotfill.load` read without a flag: config.yaml (the source's), best.pt (int8 weights,
the quantization recorded in it, models/quantization.py), quantization.json (the same
record with both files' sizes, for people), metrics.json / metrics.md (the int8 model's
dev and test scores) and status.json. It has no last.pt: an int8 run is for tagging, not
for training on (`train.init` and `slotfill ensemble` refuse it, naming the float run).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from slotfill.analysis.evaluate import SplitScorer
from slotfill.atomic import atomic_write
from slotfill.data.corpus import ReadOptions, read_corpus
from slotfill.errors import CheckpointError, DataError, RunDirError
from slotfill.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from slotfill.models.quantization import plan, quantize_state, summary
from slotfill.training.rundir import RunDir, check_output, resolve_model


@dataclass
class QuantizeResult:
    run_dir: Path
    source: Path  # the float checkpoint
    float_bytes: int
    int8_bytes: int
    summary: list[str]  # quantization.summary: what is int8, what stayed float and why
    scores: dict[str, tuple[dict, dict]]  # split -> (float scores, int8 scores)
    note: str = ""  # why there are no scores, when the corpus cannot be read


def quantize_run(model: str | Path, output: Path, force: bool = False,
                 batch_size: int = 256) -> QuantizeResult:
    """Write `output`, the int8 copy of the run or checkpoint `model`, and score both on
    the corpus's dev and test splits (when it can be read)."""
    check_output(output, force)
    source = resolve_model(model)
    if Path(output).resolve() == source.parent.resolve():
        raise RunDirError(f"--output {output} is the run being quantized",
                          "choose another directory for the int8 run")
    ckpt = load_checkpoint(source)
    if ckpt.quantization is not None:
        raise CheckpointError(f"{source} holds int8 weights already",
                              f"quantize the float run instead: {ckpt.quantization['source']}")
    float_model = ckpt.build_model("cpu")
    quantization = plan(float_model, str(source))
    state = {k: v.detach() for k, v in float_model.state_dict().items()}
    int8 = dataclasses.replace(ckpt, quantization=quantization,
                               model_state=quantize_state(state, quantization))
    int8_model = int8.build_model("cpu")  # exactly as loading the written file builds it
    scores, note = _score(ckpt, float_model, int8_model, batch_size)

    run = RunDir.create("int8", output, force)
    meta = {**ckpt.meta, "quantized_from": str(source)}
    save_checkpoint(run.best, float_model, ckpt.config, ckpt.vocabs, meta,
                    quantization=quantization)
    run.write_config(ckpt.config.to_yaml())
    sizes = {"float_bytes": source.stat().st_size, "int8_bytes": run.best.stat().st_size}
    record = json.dumps({**quantization, **sizes}, indent=1) + "\n"
    atomic_write(run.path / "quantization.json", lambda f: f.write(record.encode()))
    if scores:
        epochs = (RunDir(source.parent).read_metrics() or {}).get("epochs", 0)
        run.write_metrics(ckpt.meta.get("epoch"), epochs, scores["dev"][1],
                          scores["test"][1] if "test" in scores else None,
                          members=[str(m) for m in ckpt.meta.get("members", [])] or None)
    run.write_status("finished", f"int8 quantization of {source}")
    return QuantizeResult(run.path, source, sizes["float_bytes"], sizes["int8_bytes"],
                          summary(quantization, state), scores, note)


def _score(ckpt: Checkpoint, float_model, int8_model, batch_size: int
           ) -> tuple[dict[str, tuple[dict, dict]], str]:
    data = ckpt.config.data
    try:
        corpus = read_corpus(data.path, data.format, splits=("valid", "test"),
                             optional=("test",), options=ReadOptions.from_config(data))
    except DataError as exc:
        return {}, f"not scored: its corpus cannot be read ({exc.title})"
    scores = {}
    for split in ("valid", "test"):
        if split in corpus.splits:
            scorer = SplitScorer(corpus[split], ckpt.vocabs, "cpu", batch_size)
            scores["dev" if split == "valid" else split] = (scorer.score(float_model),
                                                             scorer.score(int8_model))
    return scores, ""
