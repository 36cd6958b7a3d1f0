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
    err,
    escape_markup,
    friendly,
    out,
    pick_model,
    print_table,
    working,
)
from slotfill.config import CORPUS_FORMATS


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
    """Score a trained model: span P/R/F1 (conlleval), accuracies, SemEval-2013
    partial-match scores, per-slot table; optionally the utterances it gets wrong.
    Python: slotfill.evaluate."""
    from slotfill.analysis import tables
    from slotfill.api import evaluate as evaluate_model

    if errors and as_json:
        raise UsageError("--errors shows utterances as text, --json prints scores only",
                         "with --json, write the wrong utterances with --errors-file FILE")
    wanted = bool(errors or errors_file)
    evaluation = evaluate_model(pick_model(model), data, split.value, device=device.value,
                                confidence=wanted)
    result = evaluation._details  # the examples and predictions behind the scores
    analysis = _analyse(result) if wanted else None
    if errors_file is not None:
        _write_errors(errors_file, analysis)
    text = json.dumps(evaluation.to_dict(), indent=2)
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
    if as_json:
        print(text)
        return
    trained = ", ".join(f"{k} {v}" for k, v in result.versions.items())
    out.print(f"{result.checkpoint} (written with {trained}) on {result.corpus} "
              f"({result.split}, {result.scores['sentences']} utterances)", markup=False)
    out.print(tables.summary_table({result.split: result.scores}))
    out.print(tables.semeval_table(result.scores))
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


data_app = typer.Typer(no_args_is_help=True, help="Inspect and convert corpora.")
app.add_typer(data_app, name="data")

FormatOption = Annotated[str, typer.Option(
    "--format", "--from", help=f"corpus format: {', '.join(CORPUS_FORMATS)}")]
TokenizerOption = Annotated[str, typer.Option(
    "--tokenizer", help="auto, whitespace or characters (see data.tokenizer)")]
LocaleOption = Annotated[Optional[str], typer.Option(
    "--locale", help="massive: the locale(s) to read, e.g. zh-CN or zh-CN,ja-JP")]
SplitOption = Annotated[Optional[str], typer.Option(
    "--split", help="corpora without splits: shares of train, valid, test, e.g. 0.8,0.1,0.1")]
SplitSeedOption = Annotated[int, typer.Option("--split-seed", help="seed of --split")]
StrictOption = Annotated[bool, typer.Option(
    "--strict", help="refuse annotations that need repairs (see data.strict)")]


def _read_options(corpus_format: str, tokenizer: str, locale: str | None, split: str | None,
                  split_seed: int, strict: bool):
    """The data.* settings given as options, validated like a config's."""
    from slotfill.config import parse_locales, parse_split
    from slotfill.data.corpus import ReadOptions

    problems = []
    if corpus_format not in CORPUS_FORMATS:
        problems.append(f"--format: invalid choice {corpus_format!r}; valid: "
                        f"{', '.join(CORPUS_FORMATS)}")
    if tokenizer not in ("auto", "whitespace", "characters"):
        problems.append(f"--tokenizer: invalid choice {tokenizer!r}; valid: auto, "
                        "whitespace, characters")
    if split is not None:
        try:
            parse_split(split)
        except ValueError as exc:
            problems.append(f"--split: {exc}")
    if problems:
        raise UsageError("Invalid options", "\n".join(problems))
    return ReadOptions(tokenizer, parse_locales(locale),
                       parse_split(split) if split else None, split_seed, strict)


@data_app.command("check")
@friendly
def data_check(
    path: Annotated[str, typer.Argument(help="corpus directory or file (or `bundled`, "
                                             "`bundled-zh`)")],
    corpus_format: FormatOption = "auto",
    tokenizer: TokenizerOption = "auto",
    locale: LocaleOption = None,
    split: SplitOption = None,
    split_seed: SplitSeedOption = 1,
    strict: StrictOption = False,
    as_json: JsonOption = False,
) -> None:
    """Report sizes, inventories, tag scheme and problems of a corpus; exit 1 on hard
    errors."""
    from slotfill.analysis import tables
    from slotfill.data.bio import SCHEMES
    from slotfill.data.check import check_corpus

    options = _read_options(corpus_format, tokenizer, locale, split, split_seed, strict)
    with working(f"checking {path}"):
        result = check_corpus(path, corpus_format, options)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        out.print(f"{result.path} ({result.format}), tag scheme {SCHEMES[result.scheme]}",
                  markup=False)
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


@data_app.command("convert")
@friendly
def data_convert(
    source: Annotated[str, typer.Argument(metavar="IN", help="corpus directory or file")],
    output: Annotated[Path, typer.Argument(metavar="OUT", help="directory to write")],
    to: Annotated[str, typer.Option("--to", help="atis, conll, jsonl or tokens")],
    corpus_format: FormatOption = "auto",
    tokenizer: TokenizerOption = "auto",
    locale: LocaleOption = None,
    split: SplitOption = None,
    split_seed: SplitSeedOption = 1,
    strict: StrictOption = False,
    scheme: Annotated[Optional[str], typer.Option(
        "--scheme", help="write the tags in this scheme: bio, iob1, bioes or bilou "
                         "(default: as read)")] = None,
    force: Annotated[bool, typer.Option("--force", help="replace OUT if it exists")] = False,
) -> None:
    """Convert a corpus to another format or tag scheme (checked by reading it back)."""
    from slotfill.data.convert import convert_corpus

    options = _read_options(corpus_format, tokenizer, locale, split, split_seed, strict)
    with working(f"converting {source} to {to}"):
        result = convert_corpus(source, output, to, corpus_format, force, options, scheme)
    sizes = ", ".join(f"{k} {v}" for k, v in result.sizes.items())
    for warning in result.warnings:
        err.print(f"warning: {warning}", markup=False)
    out.print(f"{result.source} ({result.source_format}) -> {result.output} "
              f"({result.output_format}): {sizes} utterances; {', '.join(result.files)}",
              markup=False)
