"""Commands that use a trained model: `slotfill predict`, `slotfill export`, `slotfill serve`."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from slotfill.cli.common import (
    Device,
    DeviceOption,
    JsonOption,
    ModelOption,
    SlotfillError,
    UsageError,
    app,
    escape_markup,
    friendly,
    out,
    pick_model,
    require_extra,
)


@app.command()
@friendly
def predict(
    texts: Annotated[Optional[list[str]], typer.Argument(
        metavar="TEXT...", help="utterances to tag, one per argument; '-' reads lines "
                                "from stdin")] = None,
    model: ModelOption = None,
    file: Annotated[Optional[Path], typer.Option(
        "--file", "-f", help="read utterances from this file, one per line")] = None,
    as_json: JsonOption = False,
    min_confidence: Annotated[float, typer.Option(
        "--min-confidence", metavar="P", min=0.0, max=1.0,
        help="drop slots whose confidence is below P (their tags become O)")] = 0.0,
    device: DeviceOption = Device.cpu,
) -> None:
    """Tag raw text with a trained model and show the slots it finds, with their
    confidence (the probability the model gives the span). Python: slotfill.load."""
    utterances = _read_utterances(texts or [], file)
    from slotfill.api import load

    tagger = load(pick_model(model), device=device.value)
    for result in tagger.predict(utterances, min_confidence=min_confidence):
        if as_json:
            print(json.dumps(result.to_dict(), ensure_ascii=False))
        else:
            _show_prediction(result)


def _read_utterances(texts: list[str], file: Path | None) -> list[str]:
    if texts == ["-"]:
        lines = sys.stdin.read().splitlines()
    elif file is not None:
        if texts:
            raise UsageError("Give utterances either as arguments or with --file, not both")
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise SlotfillError(f"Cannot read {file}", str(exc)) from None
    else:
        if not texts:
            raise UsageError("Nothing to tag",
                                "pass utterances as arguments, --file FILE, or '-' for stdin")
        return texts
    return [line for line in lines if line.strip()]


def _show_prediction(result) -> None:
    """One api.Result for people: tokens and tags, then the slots."""
    from rich.cells import cell_len

    out.print(f"[bold]{escape_markup(result.text)}[/]")
    if not result.tokens:
        out.print("  (no words to tag)")
        return
    if result.intent is not None:
        out.print(f"  intent: [magenta]{escape_markup(result.intent)}[/] "
                  f"[dim](confidence {result.intent_confidence:.2f})[/]")
    # padded by hand, not a rich Table, which pads the last column with trailing spaces;
    # cell_len counts a wide character (Chinese) as the two columns it takes
    width = max(cell_len(token) for token in result.tokens)
    for token, tag in zip(result.tokens, result.tags):
        pad = " " * (width - cell_len(token))
        style = "dim" if tag == "O" else "cyan"
        out.print(f"  {escape_markup(token)}{pad}    [{style}]{escape_markup(tag)}[/]")
    for slot in result.slots:
        out.print(f"  {slot.slot} = [green]{escape_markup(slot.value)}[/] "
                  f"[dim]({slot.start}-{slot.end}, confidence {slot.confidence:.2f})[/]")
    out.print()


class ExportFormat(str, Enum):
    onnx = "onnx"


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
) -> None:
    """Export a trained tagger to run without slotfill's Python code."""
    require_extra("onnx", "onnx", "onnxruntime")
    from slotfill.serving.export import export_onnx

    for path in export_onnx(pick_model(model), output, force=force):
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
    max_batch: Annotated[int, typer.Option(
        "--max-batch", help="most utterances tagged in one forward pass (requests that "
                            "arrive together share a pass)", min=1)] = 64,
    max_wait_ms: Annotated[float, typer.Option(
        "--max-wait-ms", help="longest a pass waits for more requests when more are due "
                              "(some still arriving, or fewer than the last pass took)",
        min=0, max=1000)] = 2.0,
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
    API docs at /docs; with --label-studio, a Label Studio ML backend as well."""
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
               Limits(max_utterances, max_tokens, max_body_bytes),
               device=str(resolve_device(device.value)),
               batching=Batching(max_batch, max_wait_ms), workers=workers,
               label_studio=backend)


def basic_auth_from_env() -> tuple[str, str] | None:
    """Label Studio's convention for ML backends: BASIC_AUTH_USER and BASIC_AUTH_PASS."""
    import os

    user, password = os.environ.get("BASIC_AUTH_USER"), os.environ.get("BASIC_AUTH_PASS")
    if bool(user) != bool(password):
        raise UsageError("Basic auth needs both BASIC_AUTH_USER and BASIC_AUTH_PASS",
                         "set both, or neither")
    return (user, password) if user else None
