"""Commands that ship a trained model: `slotfill quantize`, `slotfill export`, `slotfill
serve` (`slotfill predict` is cli/predict.py)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from slotfill.cli.common import (
    Device,
    DeviceOption,
    ModelOption,
    app,
    friendly,
    out,
    pick_model,
    JsonOption,
    require_extra,
)
from slotfill.errors import UsageError


class ExportFormat(str, Enum):
    onnx = "onnx"


class Precision(str, Enum):
    int8 = "int8"


@app.command()
@friendly
def quantize(
    run: Annotated[str, typer.Argument(metavar="RUN_DIR|CKPT",
                                       help="the trained run (its best.pt) or a checkpoint")],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="directory for the int8 run (then: --model DIR)")],
    force: Annotated[bool, typer.Option(
        "--force", help="replace an existing run directory at --output")] = False,
    as_json: JsonOption = False,
) -> None:
    """Write a copy of a run with int8 weights (linear, recurrent and transformer layers,
    embeddings), scored on its dev and test splits beside the float run; eval, predict,
    serve and slotfill.load use it like any run."""
    import json

    from slotfill.analysis import tables
    from slotfill.serving.quantize import quantize_run

    result = quantize_run(run, output, force)
    if as_json:
        print(json.dumps({"run": str(result.run_dir), "source": str(result.source),
                          "float_bytes": result.float_bytes, "int8_bytes": result.int8_bytes,
                          "scores": {split: {"float": f, "int8": q} for split, (f, q)
                                     in result.scores.items()}}, indent=2))
        return
    out.print(f"{result.source}: {result.float_bytes / 1e6:.2f} MB -> int8 "
              f"{result.int8_bytes / 1e6:.2f} MB "
              f"({result.int8_bytes / result.float_bytes:.0%})", markup=False)
    for line in result.summary:
        out.print(f"  {line}", markup=False)
    if result.scores:
        out.print(tables.summary_table({f"{split} {kind}": scores for split, pair
                                        in result.scores.items()
                                        for kind, scores in zip(("float", "int8"), pair)}))
    if result.note:
        out.print(result.note, markup=False)
    print(result.run_dir)


@app.command()
@friendly
def export(
    model: ModelOption = None,
    export_format: Annotated[ExportFormat, typer.Option(
        "--format", help="file format")] = ExportFormat.onnx,
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="file to write; vocabularies and tokenisation rules go "
                               "beside it")] = Path("model.onnx"),
    force: Annotated[bool, typer.Option("--force", help="overwrite existing files")] = False,
    quantize: Annotated[Optional[Precision], typer.Option(
        "--quantize", help="int8 weights through ONNX Runtime's dynamic quantization "
                           "(checked against the float graph)")] = None,
) -> None:
    """Export a trained tagger to run without slotfill's Python code."""
    require_extra("onnx", "onnx", "onnxruntime")
    from slotfill.serving.export import export_onnx

    for path in export_onnx(pick_model(model), output, force=force,
                            quantize=quantize.value if quantize else None):
        out.print(f"wrote {path}", markup=False)


@app.command()
@friendly
def serve(
    model: ModelOption = None,
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port", min=0, max=65535)] = 8000,
    max_utterances: Annotated[int, typer.Option(
        "--max-utterances", help="most utterances per request", min=1)] = 64,
    max_tokens: Annotated[int, typer.Option(
        "--max-tokens", help="most tokens per utterance", min=1)] = 512,
    max_body_bytes: Annotated[int, typer.Option(
        "--max-body-bytes", help="largest request body", min=1)] = 1 << 20,
    max_n_best: Annotated[int, typer.Option(
        "--max-n-best", help="largest \"n_best\" a request may ask for (tag sequences "
                             "listed per utterance)", min=1)] = 20,
    max_batch: Annotated[int, typer.Option(
        "--max-batch", help="most utterances tagged in one forward pass (requests that "
                            "arrive together share a pass)", min=1)] = 64,
    max_wait_ms: Annotated[float, typer.Option(
        "--max-wait-ms", help="longest a pass waits for more requests when more are due "
                              "(some still arriving, or fewer than the last pass took)",
        min=0, max=1000)] = 2.0,
    max_queue: Annotated[int, typer.Option(
        "--max-queue", help="most requests pending (being received, queued or being "
                            "tagged) in each server process; beyond, POST /predict "
                            "answers 503 with Retry-After at once and GET /ready 503, so "
                            "that latency stays bounded (default: one full pass; "
                            "accepted requests waited 75 ms, p99, under 256 clients)",
        min=1)] = 64,
    workers: Annotated[int, typer.Option(
        "--workers", help="server processes sharing the port, each with its own copy of "
                          "the model and its share of the cores (Linux): more requests/s "
                          "from many clients", min=1)] = 1,
    device: DeviceOption = Device.cpu,
    label_studio: Annotated[bool, typer.Option(
        "--label-studio", help="also be a Label Studio ML backend at /label-studio: "
                               "pre-annotations, and retraining on its annotations "
                               "(docs/tutorials/label-studio.md)")] = False,
    label_studio_url: Annotated[Optional[str], typer.Option(
        "--label-studio-url", envvar="LABEL_STUDIO_URL", metavar="URL",
        help="with --label-studio: the Label Studio to fetch annotations from")] = None,
    label_studio_api_key: Annotated[Optional[str], typer.Option(
        "--label-studio-api-key", envvar="LABEL_STUDIO_API_KEY", metavar="KEY",
        help="with --label-studio: its API key (a legacy token)", show_default=False)]
        = None,
    retrain_dir: Annotated[Path, typer.Option(
        "--retrain-dir", help="with --label-studio: where retraining rounds go")]
        = Path("runs/label-studio"),
    retrain_epochs: Annotated[int, typer.Option(
        "--retrain-epochs", min=1, help="with --label-studio: epochs of each fine-tuning")]
        = 10,
    min_annotations: Annotated[int, typer.Option(
        "--min-annotations", min=3, help="with --label-studio: annotated tasks a round "
                                         "needs (15% are held out to judge it)")] = 10,
) -> None:
    """Serve a trained tagger over HTTP: a demo page at /, POST /predict, GET /health,
    GET /ready, API docs at /docs; with --label-studio, a Label Studio ML backend as well.
    SIGTERM (or Ctrl-C) answers the requests already accepted, then exits."""
    require_extra("serve", "fastapi", "uvicorn")
    from slotfill.runtime import resolve_device
    from slotfill.serving.serve import Batching, Limits, run_server

    backend = None
    if label_studio:
        from slotfill.loop.retrain import LabelStudioSettings

        if workers > 1:
            raise UsageError("--label-studio serves from one process",
                             "its retraining swaps the model of the process that trained; "
                             "drop --workers")
        backend = LabelStudioSettings(label_studio_url, label_studio_api_key, retrain_dir,
                                      basic_auth_from_env(), min_annotations, retrain_epochs)
    run_server(pick_model(model), host, port,
               Limits(max_utterances, max_tokens, max_body_bytes, max_n_best),
               device=str(resolve_device(device.value)),
               batching=Batching(max_batch, max_wait_ms, max_queue), workers=workers,
               label_studio=backend)


def basic_auth_from_env() -> tuple[str, str] | None:
    """Label Studio's convention for ML backends: BASIC_AUTH_USER and BASIC_AUTH_PASS."""
    import os

    user, password = os.environ.get("BASIC_AUTH_USER"), os.environ.get("BASIC_AUTH_PASS")
    if bool(user) != bool(password):
        raise UsageError("Basic auth needs both BASIC_AUTH_USER and BASIC_AUTH_PASS",
                         "set both, or neither")
    return (user, password) if user else None
