"""`slotfill` command line: a thin Typer adapter over train/evaluate/predict.

Each command parses its arguments, calls one importable function and renders the result.
torch is imported inside the commands so that `slotfill --help` stays fast.
User mistakes (SlotfillError) print a title and detail on stderr and exit non-zero.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from slotfill import __version__
from slotfill.errors import SlotfillError, UsageError

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="Train, evaluate and run slot-filling taggers.")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
_state = {"debug": False}


class Split(str, Enum):
    train = "train"
    valid = "valid"
    test = "test"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


ModelOption = Annotated[Optional[str], typer.Option(
    "--model", "-m", metavar="CKPT|RUN_DIR",
    help="checkpoint file, or run directory (its best.pt); default: newest run in ./runs/")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]
DeviceOption = Annotated[Device, typer.Option("--device", help="where to run the model")]


def friendly(command):
    """Turn user errors into a title + detail on stderr and an exit code, no traceback."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SlotfillError as exc:
            if _state["debug"]:
                raise
            err.print(f"[bold red]Error:[/] {_escape(exc.title)}")
            if exc.detail:
                err.print(exc.detail, markup=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("Interrupted.")
            raise typer.Exit(130) from None
    return wrapper


def _version(value: bool) -> None:
    if value:
        print(f"slotfill {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks for errors")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    _state["debug"] = debug


# ------------------------------------------------------------------ train

def split_train_args(args: list[str]) -> tuple[str | None, list[str]]:
    """The first argument without '=' is the config file; the others are overrides."""
    config, overrides = None, []
    for arg in args:
        if "=" in arg:
            overrides.append(arg)
        elif config is None:
            config = arg
        else:
            raise UsageError(f"Unexpected argument {arg!r}",
                              f"the config file is {config!r}; overrides look like "
                              "model.hidden_size=256")
    return config, overrides


@app.command()
@friendly
def train(
    args: Annotated[Optional[list[str]], typer.Argument(
        metavar="[CONFIG] [KEY=VALUE]...",
        help="YAML config (default: the bundled bilstm.yaml) and overrides such as "
             "model.hidden_size=256")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="run directory (default: runs/<config>-<timestamp>/)")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="replace an existing run directory given by --output")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="validate the config and the corpus, print them, train nothing")]
        = False,
    resume: Annotated[Optional[Path], typer.Option(
        "--resume", metavar="RUN_DIR", help="continue an interrupted run from its last.pt")]
        = None,
) -> None:
    """Train a tagger; the last line printed is the run directory."""
    from slotfill.config import load_config
    from slotfill.resources import default_config_path
    from slotfill.rundir import create_run_dir

    if resume is not None and (args or output or dry_run):
        raise UsageError("--resume takes no config, overrides, --output or --dry-run",
                         "a resumed run uses its own config and directory")
    display = TrainDisplay()
    if resume is None:
        config_path, overrides = split_train_args(args or [])
        cfg = load_config(config_path, overrides)
        name = Path(config_path).stem if config_path else default_config_path().stem
        out.print("[bold]Resolved config[/]")
        out.print(cfg.to_yaml().rstrip(), markup=False)

    from slotfill import train as training

    try:
        if resume is not None:
            run_dir = resume
            result = training.resume(resume, on_start=display.start, on_batch=display.batch,
                                     on_epoch=display.epoch)
        else:
            prepared = training.prepare(cfg)
            if dry_run:
                from slotfill.models import build_model
                model = build_model(cfg.model, prepared.vocabs)
                display.start({**prepared.summary(), "device": cfg.train.device,
                               "parameters": sum(p.numel() for p in model.parameters())},
                              header=False)
                out.print("dry run: config and corpus are valid; nothing was trained")
                return
            run_dir = create_run_dir(name, output, force)
            result = training.train(cfg, run_dir, prepared, on_start=display.start,
                                    on_batch=display.batch, on_epoch=display.epoch)
    except training.TrainingInterrupted as exc:
        display.close()
        err.print(f"Interrupted {exc.where}: saved {exc.run_dir / 'last.pt'}.")
        err.print(f"Resume with: slotfill train --resume {exc.run_dir}", markup=False)
        raise typer.Exit(130 if exc.signum == signal.SIGINT else 128 + exc.signum) from None
    finally:
        display.close()

    from slotfill import report
    columns = {"dev": result.dev, **({"test": result.test} if result.test else {})}
    out.print()
    out.print(report.summary_table(
        columns, title=f"best.pt: epoch {result.best_epoch} of {len(result.history)}"))
    print(run_dir)


class TrainDisplay:
    """Progress bar on stderr while an epoch runs; one row per epoch on stdout."""

    def __init__(self) -> None:
        self.progress = None

    def start(self, summary: dict, header: bool = True) -> None:
        from slotfill import report
        sizes = ", ".join(f"{k} {v}" for k, v in summary["sizes"].items())
        out.print(f"corpus {summary['corpus']} ({summary['format']}): {sizes} utterances; "
                  f"{summary['words']} words, {summary['tags']} tags", markup=False)
        for warning in summary["warnings"]:
            err.print(f"warning: {warning}", markup=False)
        out.print(f"model: {summary['parameters']:,} parameters on {summary['device']}")
        if summary.get("resumed_after") is not None:
            out.print(f"resuming after epoch {summary['resumed_after']}")
        if header:
            out.print(report.epoch_header(), markup=False)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def batch(self, step: int, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
        if self.progress is None:
            self.progress = Progress("training", BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=err, transient=True,
                                     disable=not err.is_terminal)
            self.progress.start()
            self.task = self.progress.add_task("epoch", total=total)
        self.progress.update(self.task, completed=step)
        if step == total:
            self.progress.stop()
            self.progress = None

    def epoch(self, record) -> None:
        from slotfill import report
        out.print(report.epoch_row(record), markup=False)


# ------------------------------------------------------------------ eval

@app.command("eval")
@friendly
def evaluate(
    model: ModelOption = None,
    data: Annotated[Optional[str], typer.Option(
        "--data", help="corpus directory (default: the one the model was trained on)")] = None,
    split: Annotated[Split, typer.Option("--split", help="which split to score")] = Split.test,
    as_json: JsonOption = False,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="also write the scores as JSON to this file")] = None,
    device: DeviceOption = Device.cpu,
) -> None:
    """Score a trained model: span P/R/F1 (conlleval), accuracies, per-slot table."""
    from slotfill import report
    from slotfill.evaluate import evaluate_checkpoint
    from slotfill.rundir import resolve_model
    from slotfill.runtime import resolve_device

    result = evaluate_checkpoint(resolve_model(model), data, split.value,
                                 device=resolve_device(device.value))
    text = json.dumps(result.scores, indent=2)
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
    if as_json:
        print(text)
        return
    out.print(f"{result.checkpoint} on {result.corpus} ({result.split}, "
              f"{result.scores['sentences']} utterances)", markup=False)
    out.print(report.summary_table({result.split: result.scores}))
    out.print(report.per_slot_table(result.scores))


# ------------------------------------------------------------------ predict

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
    device: DeviceOption = Device.cpu,
) -> None:
    """Tag raw text with a trained model and show the slots it finds."""
    utterances = _read_utterances(texts or [], file)
    from slotfill.predict import Predictor
    from slotfill.rundir import resolve_model
    from slotfill.runtime import resolve_device

    predictor = Predictor(resolve_model(model), device=str(resolve_device(device.value)))
    for result in predictor.predict(utterances):
        if as_json:
            print(json.dumps(result, ensure_ascii=False))
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


def _show_prediction(result: dict) -> None:
    from rich.table import Table

    out.print(f"[bold]{_escape(result['text'])}[/]")
    if not result["tokens"]:
        out.print("  (no words to tag)")
        return
    if result.get("intent") is not None:
        out.print(f"  intent: [magenta]{_escape(result['intent'])}[/]")
    table = Table(show_header=False, box=None, padding=(0, 2))
    for token, tag in zip(result["tokens"], result["tags"]):
        table.add_row(_escape(token), f"[dim]{tag}[/]" if tag == "O" else f"[cyan]{tag}[/]")
    out.print(table)
    for slot in result["slots"]:
        out.print(f"  {slot['slot']} = [green]{_escape(slot['value'])}[/] "
                  f"[dim]({slot['start']}-{slot['end']})[/]")
    out.print()


def _escape(text: str) -> str:
    from rich.markup import escape
    return escape(text)


# ------------------------------------------------------------------ compare

@app.command()
@friendly
def compare(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN_DIR...",
                                                help="run directories to put side by side")],
    as_json: JsonOption = False,
) -> None:
    """Put training runs side by side: tagger, epochs, dev and test scores, time."""
    from slotfill import report
    from slotfill.rundir import summarize_run

    summaries = [summarize_run(run) for run in runs]
    if as_json:
        print(json.dumps(summaries, indent=2))
    else:
        out.print(report.compare_table(summaries))


# ------------------------------------------------------------------ data check

data_app = typer.Typer(no_args_is_help=True, help="Inspect corpora.")
app.add_typer(data_app, name="data")


@data_app.command("check")
@friendly
def data_check(
    path: Annotated[str, typer.Argument(help="corpus directory (or `bundled`)")],
    corpus_format: Annotated[str, typer.Option(
        "--format", help="auto, atis or conll")] = "auto",
    as_json: JsonOption = False,
) -> None:
    """Report sizes, inventories and problems of a corpus; exit 1 on hard errors."""
    from slotfill import report
    from slotfill.datacheck import check_corpus

    if corpus_format not in ("auto", "atis", "conll"):
        raise UsageError(f"Invalid --format {corpus_format!r}", "valid: auto, atis, conll")
    result = check_corpus(path, corpus_format)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        out.print(f"{result.path} ({result.format})", markup=False)
        for table in report.data_tables(result):
            out.print(table)
        for warning in result.warnings:
            out.print(f"[yellow]warning:[/] {_escape(warning)}")
        for error in result.errors:
            out.print(f"[red]error:[/] {_escape(error)}")
        verdict = (f"[red]{len(result.errors)} errors[/]: training refuses this corpus"
                   if result.errors else "[green]no errors[/]")
        out.print(f"{verdict}; {len(result.warnings)} warnings")
    if result.errors:
        raise typer.Exit(1)


def main() -> None:
    app()
