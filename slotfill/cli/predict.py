"""`slotfill predict`: tag utterances from arguments, files or stdin, streaming.

Input is read lazily and each batch's results are written as soon as it is tagged, so
memory stays flat and output starts at once. One record per input line, in order, blank
and wordless lines included (a record without tokens), so that the output lines up with
the input (`paste in.txt <(slotfill predict --file in.txt --format tsv)`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import ExitStack
from enum import Enum
from pathlib import Path
from typing import IO, Annotated, Optional

import typer
from rich.console import Console

from slotfill.cli.common import (
    Device,
    DeviceOption,
    ModelOption,
    UsageError,
    app,
    err,
    escape_markup,
    friendly,
    out,
    pick_model,
)


class OutputFormat(str, Enum):
    table = "table"
    jsonl = "jsonl"
    tsv = "tsv"
    conll = "conll"


@app.command()
@friendly
def predict(
    texts: Annotated[Optional[list[str]], typer.Argument(
        metavar="TEXT...", help="utterances to tag, one per argument; '-' reads lines "
                                "from stdin")] = None,
    model: ModelOption = None,
    files: Annotated[Optional[list[Path]], typer.Option(
        "--file", "-f", help="read utterances from this file, one per line ('-': stdin); "
                             "repeat it for several files, read one after another")] = None,
    output_format: Annotated[Optional[OutputFormat], typer.Option(
        "--format", help="table (for people; the default on stdout), jsonl (one JSON "
                         "object per line; the default with --output), tsv (text, tags, "
                         "slots[, intent]) or conll (a token and its tag per line, a "
                         "blank line after each utterance)")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="the same as --format jsonl")] = False,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="write the records to this file (atomically: all of it "
                               "or, on failure, nothing) instead of stdout")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, help="processes sharing the work, each with its own copy of "
                                 "the model and its share of the cores; the order is "
                                 "kept (worth it for files of many thousands of lines)")] = 1,
    min_confidence: Annotated[float, typer.Option(
        "--min-confidence", metavar="P", min=0.0, max=1.0,
        help="drop slots whose confidence is below P (their tags become O)")] = 0.0,
    n_best: Annotated[Optional[int], typer.Option(
        "--n-best", metavar="K",
        help="also list the K most probable tag sequences of each utterance, with their "
             "probabilities and slots (table and jsonl formats; the first is the answer)")]
        = None,
    device: DeviceOption = Device.cpu,
) -> None:
    """Tag raw text with a trained model and show the slots it finds, with their
    confidence (the probability the model gives the span). Python: slotfill.load."""
    fmt = _pick_format(output_format, as_json, output)
    if n_best is not None:
        from slotfill.serving.nbest import check_n_best

        check_n_best(n_best, "--n-best")
        if fmt not in (OutputFormat.table, OutputFormat.jsonl):
            raise UsageError(f"--n-best and --format {fmt.value} do not fit together",
                             "n-best lists are written in the table and jsonl formats")
    paths = _input_paths(texts or [], files or [])
    from slotfill.api import load
    from slotfill.serving.stream import BATCH, LineReader

    tagger = load(pick_model(model), device=device.value)
    reader = LineReader(paths) if paths is not None else None
    interactive = reader is not None and "-" in paths and sys.stdin.isatty()
    if reader is None:
        results = tagger.predict(texts, min_confidence, workers=workers, n_best=n_best)
    elif interactive:  # someone at the keyboard: answer each line at once, not 256 at a time
        results = (r for line in reader
                   for r in tagger.predict([line], min_confidence, n_best=n_best))
    else:
        results = tagger.predict(iter(reader), min_confidence, workers=workers,
                                 n_best=n_best)
    # on stderr, unless the records go to the same terminal
    show_progress = reader is not None and err.is_terminal and (
        output is not None or not out.is_terminal)
    flush_every = 1 if interactive else BATCH
    try:
        with ExitStack() as stack:
            sink = _open_sink(stack, output, fmt)
            progress = stack.enter_context(_Progress(reader)) if show_progress else None
            for n, result in enumerate(results, 1):
                sink.write(result)
                if n % flush_every == 0:
                    sink.flush()
                    if progress is not None:
                        progress.update(n)
    except BrokenPipeError:  # `| head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    if reader is not None:
        for warning in reader.warnings:
            err.print(f"warning: {warning}", markup=False)
        if reader.repaired > len(reader.warnings):
            err.print(f"warning: {reader.repaired} lines were not UTF-8 (U+FFFD in place "
                      "of their undecodable bytes)", markup=False)


def _pick_format(chosen: OutputFormat | None, as_json: bool,
                 output: Path | None) -> OutputFormat:
    if as_json:
        if chosen not in (None, OutputFormat.jsonl):
            raise UsageError(f"--json and --format {chosen.value} disagree",
                             "--json is --format jsonl; give one of them")
        return OutputFormat.jsonl
    if chosen is not None:
        return chosen
    return OutputFormat.jsonl if output is not None else OutputFormat.table


def _input_paths(texts: list[str], files: list[Path]) -> list[str] | None:
    """The files to read lines from ('-' is stdin), or None when the arguments are the
    utterances."""
    if texts and files:
        raise UsageError("Give utterances either as arguments or with --file, not both")
    if texts == ["-"]:
        return ["-"]
    if files:
        return [str(f) for f in files]
    if not texts:
        raise UsageError("Nothing to tag",
                         "pass utterances as arguments, --file FILE, or '-' for stdin")
    return None


# ---------------------------------------------------------------- the records


class _Sink:
    """Writes one record per result in the chosen format."""

    def __init__(self, file: IO[str], fmt: OutputFormat) -> None:
        self.file, self.fmt = file, fmt
        self.console = (out if file is sys.stdout else
                        Console(file=file, highlight=False, soft_wrap=True, no_color=True))

    def write(self, result) -> None:
        if self.fmt is OutputFormat.table:
            show_prediction(result, self.console)
        else:
            self.file.write(RECORDS[self.fmt](result))

    def flush(self) -> None:
        self.file.flush()


def _open_sink(stack: ExitStack, output: Path | None, fmt: OutputFormat) -> _Sink:
    if output is None:
        return _Sink(sys.stdout, fmt)
    from slotfill.atomic import atomic_open

    return _Sink(stack.enter_context(atomic_open(output, "w", encoding="utf-8",
                                                 newline="\n")), fmt)


def jsonl_record(result) -> str:
    return json.dumps(result.to_dict(), ensure_ascii=False) + "\n"


def tsv_record(result) -> str:
    """text, tags (space-separated), slots (`type=value`, joined by `; `) and, for an
    intent model, the intent; a tab inside the text becomes a space."""
    slots = "; ".join(f"{s.slot}={s.value}" for s in result.slots)
    fields = [result.text, " ".join(result.tags), slots]
    if result.with_intent:
        fields.append(result.intent or "")
    return "\t".join(field.replace("\t", " ") for field in fields) + "\n"


def conll_record(result) -> str:
    """A token and its tag per line, then a blank line: an utterance without words is a
    blank line alone, so the n-th blank line still ends the n-th input line's record.
    An intent model's intent comes first, as `# intent: NAME` (what the conll reader
    takes)."""
    head = [f"# intent: {result.intent}"] if result.with_intent and result.intent else []
    rows = [f"{token}\t{tag}" for token, tag in zip(result.tokens, result.tags)]
    return "".join(f"{line}\n" for line in head + rows) + "\n"


RECORDS = {OutputFormat.jsonl: jsonl_record, OutputFormat.tsv: tsv_record,
           OutputFormat.conll: conll_record}


def show_prediction(result, console: Console = out) -> None:
    """One api.Result for people: tokens and tags, then the slots."""
    from rich.cells import cell_len

    console.print(f"[bold]{escape_markup(result.text)}[/]")
    if not result.tokens:
        console.print("  (no words to tag)")
        return
    if result.intent is not None:
        console.print(f"  intent: [magenta]{escape_markup(result.intent)}[/] "
                      f"[dim](confidence {result.intent_confidence:.2f})[/]")
    # padded by hand, not a rich Table, which pads the last column with trailing spaces;
    # cell_len counts a wide character (Chinese) as the two columns it takes
    width = max(cell_len(token) for token in result.tokens)
    for token, tag in zip(result.tokens, result.tags):
        pad = " " * (width - cell_len(token))
        style = "dim" if tag == "O" else "cyan"
        console.print(f"  {escape_markup(token)}{pad}    [{style}]{escape_markup(tag)}[/]")
    for slot in result.slots:
        console.print(f"  {slot.slot} = [green]{escape_markup(slot.value)}[/] "
                      f"[dim]({slot.start}-{slot.end}, confidence {slot.confidence:.2f})[/]")
    if result.n_best is not None:
        show_alternatives(result.n_best, console)
    console.print()


def show_alternatives(alternatives, console: Console = out) -> None:
    """An n-best list for people: a line per tag sequence with its probability, the
    first with its slots, the others with what differs from the first (the slots it
    lacks, and the words left without a slot)."""
    console.print(f"  {len(alternatives)} most probable tag sequences (after the first, "
                  "what differs from it):")
    first = alternatives[0]
    for rank, alternative in enumerate(alternatives, 1):
        if rank == 1:
            shown = ", ".join(f"{s.slot} = {s.value}" for s in first.slots) or "(no slots)"
        else:
            shown = ", ".join(_differences(first, alternative))
        p = alternative.probability
        console.print(f"  {rank:>3}. {p:.3f}  {escape_markup(shown)}" if p >= 0.0005 else
                      f"  {rank:>3}. {p:.0e}  {escape_markup(shown)}")


def _differences(first, other) -> list[str]:
    """`other`'s slots that `first` lacks, then `first`'s slots whose words `other`
    leaves without any slot; the same slots in other tags: those tags."""
    def key(slot):
        return slot.slot, slot.start, slot.end

    theirs = {key(s) for s in first.slots}
    added = [s for s in other.slots if key(s) not in theirs]
    mine = {key(s) for s in other.slots}
    dropped = [s for s in first.slots if key(s) not in mine and not any(
        a.start < s.end and s.start < a.end for a in other.slots)]
    found = [f"{s.slot} = {s.value}" for s in added] + [f"no slot at {s.value}"
                                                        for s in dropped]
    return found or [f"the same slots, tags {' '.join(other.tags)}"]


# ---------------------------------------------------------------- progress


class _Progress:
    """Lines done and lines/s on stderr, with the time left when the input's size is
    known (every input a regular file: the bytes read so far against their total)."""

    def __init__(self, reader) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.reader, self.started = reader, time.perf_counter()
        self.bar = Progress(TextColumn("tagging"), BarColumn(),
                            TextColumn("{task.fields[lines]:,} lines, "
                                       "{task.fields[rate]:,.0f} lines/s"),
                            TimeRemainingColumn(), console=err, transient=True)
        self.task = self.bar.add_task("tagging", total=reader.size, lines=0, rate=0.0)

    def __enter__(self) -> _Progress:
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.stop()

    def update(self, lines: int) -> None:
        rate = lines / max(time.perf_counter() - self.started, 1e-9)
        self.bar.update(self.task, completed=self.reader.position, lines=lines, rate=rate)
