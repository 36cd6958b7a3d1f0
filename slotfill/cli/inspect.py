"""Commands that score and inspect: `slotfill eval`, `slotfill compare`, `slotfill data check`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from slotfill.cli.common import (
    Device,
    DeviceOption,
    JsonOption,
    ModelOption,
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
    data: Annotated[Optional[str], typer.Option(
        "--data", help="corpus directory (default: the one the model was trained on)")] = None,
    split: Annotated[Split, typer.Option("--split", help="which split to score")] = Split.test,
    as_json: JsonOption = False,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="also write the scores as JSON to this file")] = None,
    device: DeviceOption = Device.cpu,
) -> None:
    """Score a trained model: span P/R/F1 (conlleval), accuracies, per-slot table."""
    from slotfill.analysis import tables
    from slotfill.analysis.evaluate import evaluate_checkpoint
    from slotfill.runtime import resolve_device

    result = evaluate_checkpoint(pick_model(model), data, split.value,
                                 device=resolve_device(device.value))
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


@app.command()
@friendly
def compare(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN_DIR...",
                                                help="run directories to put side by side")],
    as_json: JsonOption = False,
    significance: Annotated[bool, typer.Option(
        "--significance/--no-significance",
        help="test each run against the first with a paired bootstrap over the split's "
             "utterances (predicts with each best.pt)")] = True,
    split: Annotated[Split, typer.Option(
        "--split", help="the split the bootstrap resamples")] = Split.test,
    samples: Annotated[int, typer.Option("--samples", min=100,
                                         help="bootstrap resamples")] = 1000,
) -> None:
    """Put training runs side by side: tagger, epochs, dev and test scores, time; and
    whether each differs from the first beyond noise."""
    from slotfill.analysis import tables
    from slotfill.training.rundir import RunDir

    summaries = [RunDir.open(run).summary() for run in runs]
    tests = (_bootstrap_against_first(runs, split.value, samples)
             if significance and len(runs) > 1 else None)
    if as_json:  # each later run's test against the first sits in its summary
        for summary, row in zip(summaries[1:], tests["runs"] if tests else []):
            summary["significance"] = {k: v for k, v in tests.items() if k != "runs"} | row
        print(json.dumps(summaries, indent=2))
        return
    print_table(tables.compare_table(summaries))
    if tests is not None:
        print_table(tables.significance_table(tests))


def _bootstrap_against_first(runs: list[Path], split: str, samples: int) -> dict:
    """The paired bootstrap of each run against the first, on `split` of the first's
    corpus; a run that cannot be compared says why."""
    from slotfill.analysis.significance import paired_bootstrap, predictions_on

    def predicted(run: Path):
        best = run / "best.pt"
        if not best.is_file():
            return None, "no best.pt yet"
        return predictions_on(best, split), ""

    reference, reason = predicted(runs[0])
    if reference is None:
        return {"reference": str(runs[0]), "split": split, "error": reason, "runs": []}
    corpus, examples, reference_predictions = reference
    rows = []
    for run in runs[1:]:
        other, reason = predicted(run)
        if other is not None and other[0] != corpus:
            other, reason = None, f"trained on {other[0]}, not {corpus}"
        differences = [] if other is None else paired_bootstrap(
            examples, reference_predictions, other[2], samples)
        rows.append({"run": str(run), "reason": reason,
                     "differences": [d.to_dict() for d in differences]})
    return {"reference": str(runs[0]), "split": split, "utterances": len(examples),
            "samples": samples, "runs": rows}


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
