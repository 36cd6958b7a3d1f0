"""Commands that score and inspect: `slotfill eval`, `slotfill compare`, `slotfill data check`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from slotfill.cli.common import (
    DataOption,
    Device,
    DeviceOption,
    JsonOption,
    ModelOption,
    SlotfillError,
    Split,
    UsageError,
    app,
    escape_markup,
    friendly,
    out,
    pick_model,
    print_table,
)


@app.command("eval")
@friendly
def evaluate(
    model: ModelOption = None,
    data: DataOption = None,
    split: Annotated[Split, typer.Option("--split", help="which split to score")] = Split.test,
    as_json: JsonOption = False,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="also write the scores as JSON to this file")] = None,
    errors: Annotated[int, typer.Option(
        "--errors", metavar="N", min=0,
        help="also show the N worst utterances: gold and predicted spans, error kinds")] = 0,
    errors_file: Annotated[Optional[Path], typer.Option(
        "--errors-file", metavar="FILE",
        help="write every wrong utterance to FILE as JSON Lines")] = None,
    device: DeviceOption = Device.cpu,
) -> None:
    """Score a trained model: span P/R/F1 (conlleval), accuracies, per-slot table;
    optionally the utterances it gets wrong."""
    from slotfill.analysis import tables
    from slotfill.analysis.evaluate import evaluate_checkpoint
    from slotfill.runtime import resolve_device

    if errors and as_json:
        raise UsageError("--errors shows utterances as text, --json prints scores only",
                         "with --json, write the wrong utterances with --errors-file FILE")
    wanted = bool(errors or errors_file)
    result = evaluate_checkpoint(pick_model(model), data, split.value,
                                 device=resolve_device(device.value), confidence=wanted)
    analysis = _analyse(result) if wanted else None
    if errors_file is not None:
        _write_errors(errors_file, analysis)
    text = json.dumps({"model": str(result.checkpoint), **result.scores}, indent=2)
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
    if as_json:
        print(text)
        return
    trained = ", ".join(f"{k} {v}" for k, v in result.versions.items())
    out.print(f"{result.checkpoint} (written with {trained}) on {result.corpus} "
              f"({result.split}, {result.scores['sentences']} utterances)", markup=False)
    out.print(tables.summary_table({result.split: result.scores}))
    out.print(tables.per_slot_table(result.scores))
    if errors:
        from slotfill.analysis.error_view import worst_lines
        for line in worst_lines(analysis, errors):
            out.print(line)


def _analyse(result):
    from slotfill.analysis.errors import analyse
    return analyse(result.examples, result.predictions, frozenset(result.vocabs.words.itos))


def _write_errors(path: Path, analysis) -> None:
    from slotfill.atomic import atomic_write
    lines = "".join(json.dumps(u.to_dict(), ensure_ascii=False) + "\n" for u in analysis.wrong)
    try:
        atomic_write(path, lambda f: f.write(lines.encode("utf-8")))
    except OSError as exc:
        raise SlotfillError(f"Cannot write {path}", str(exc)) from None


@app.command()
@friendly
def compare(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN_DIR...",
                                                help="run directories to put side by side")],
    as_json: JsonOption = False,
) -> None:
    """Put training runs side by side: tagger, epochs, dev and test scores, time."""
    from slotfill.analysis import tables
    from slotfill.training.rundir import RunDir

    summaries = [RunDir.open(run).summary() for run in runs]
    if as_json:
        print(json.dumps(summaries, indent=2))
    else:
        print_table(tables.compare_table(summaries))


@app.command()
@friendly
def runs(
    runs_dir: Annotated[Path, typer.Argument(
        metavar="[DIR]", help="where the runs are (default: ./runs)")] = Path("runs"),
    as_json: JsonOption = False,
) -> None:
    """List training runs, newest first: tagger, state, best epoch, F1, date, minutes."""
    from slotfill.analysis import tables
    from slotfill.training.rundir import find_runs

    if not runs_dir.is_dir():
        raise UsageError(f"No such directory: {runs_dir}",
                         "run `slotfill train` first, or pass the directory that holds "
                         "your runs")
    summaries = [run.summary() for run in find_runs(runs_dir)]
    if as_json:
        print(json.dumps(summaries, indent=2))
    elif not summaries:
        out.print(f"no runs in {runs_dir}", markup=False)
    else:
        print_table(tables.runs_table(summaries))


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
    from slotfill.analysis import tables
    from slotfill.data.check import check_corpus

    if corpus_format not in ("auto", "atis", "conll"):
        raise UsageError(f"Invalid --format {corpus_format!r}", "valid: auto, atis, conll")
    result = check_corpus(path, corpus_format)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        out.print(f"{result.path} ({result.format})", markup=False)
        for table in tables.data_tables(result):
            out.print(table)
        for warning in result.warnings:
            out.print(f"[yellow]warning:[/] {escape_markup(warning)}")
        for error in result.errors:
            out.print(f"[red]error:[/] {escape_markup(error)}")
        plural = lambda n, word: f"{n} {word}" + ("" if n == 1 else "s")  # noqa: E731
        verdict = (f"[red]{plural(len(result.errors), 'error')}[/]: training refuses this "
                   "corpus" if result.errors else "[green]no errors[/]")
        out.print(f"{verdict}; {plural(len(result.warnings), 'warning')}")
    if result.errors:
        raise typer.Exit(1)
