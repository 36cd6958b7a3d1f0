"""The console display of a training run, shared by `slotfill train` and `slotfill.train`:
what the run trains, a progress bar while an epoch trains, one line per epoch, the
final scores. A training logger like the others (events.py), given the consoles to
print on, so that the CLI's own (quiet on a torchrun worker) and a script's can use it."""

from __future__ import annotations

import time

from rich.console import Console

from slotfill.analysis import tables
from slotfill.training.events import TrainingLogger


class TrainDisplay(TrainingLogger):
    """The console: a summary at the start, a progress bar on stderr while an epoch trains
    and while dev is scored (epoch, running loss, time left), one row per epoch on
    stdout, the final scores at the end. A training logger (events.TrainingLogger)."""

    LOSS_EVERY = 0.25  # seconds between reads of the loss (a read may wait for a GPU)

    def __init__(self, out: Console | None = None, err: Console | None = None) -> None:
        # default consoles as the CLI's: no highlighting, lines never cut at the width
        self.out = out or Console(highlight=False, soft_wrap=True)
        self.err = err or Console(stderr=True, highlight=False, soft_wrap=True)
        self.progress = None
        self.phase = None
        self.loss_sum, self.loss_count, self.loss_read = 0.0, 0, 0.0

    def start(self, run, header: bool = True) -> None:
        out, err = self.out, self.err
        summary = run.corpus
        sizes = ", ".join(f"{k} {v}" for k, v in summary["sizes"].items())
        out.print(f"corpus {summary['corpus']} ({summary['format']}): {sizes} utterances; "
                  f"{summary['words']} words, {summary['tags']} tags", markup=False)
        if "gazetteers" in summary:
            lists = ", ".join(f"{name} ({n})" for name, n in summary["gazetteers"].items())
            out.print(f"gazetteers: {lists} entries", markup=False)
        for warning in [*summary["warnings"], *run.warnings]:
            err.print(f"warning: {warning}", markup=False)
        if "embeddings" in summary:
            e = summary["embeddings"]
            out.print(f"embeddings {e['file']} ({e['layout']}): {e['found']} of {e['of']} "
                      f"training words found ({e['exact']} exact, {e['lowercase']} "
                      f"lowercased, {e['digits']} with digits as 0); {e['added']} more "
                      "words from the file", markup=False)
        if "init" in summary:
            added = ", ".join(f"{n} {kind}" for kind, n in summary["init"]["added"].items())
            out.print(f"starting from the weights of {summary['init']['from']}; "
                      f"vocabulary added: {added}", markup=False)
        out.print(f"model: {run.parameters:,} parameters on {run.device}"
                  + (f", {run.processes} processes" if run.processes > 1 else ""))
        if run.threads:
            out.print(run.threads, markup=False)
        if run.resumed_from is not None:
            out.print(f"resuming at {run.resumed_from}")
        if header:
            out.print(tables.epoch_header(), markup=False)

    def step(self, step) -> None:
        if not self.err.is_terminal:
            return
        if self.progress is None or self.phase != (step.epoch, step.phase):
            self._new_bar(step)
        if step.loss is not None:
            now = time.monotonic()
            if now - self.loss_read >= self.LOSS_EVERY or step.done == step.total:
                self.loss_sum += float(step.loss)
                self.loss_count += 1
                self.loss_read = now
        loss = (f"loss {self.loss_sum / self.loss_count:.4f}"
                if self.loss_count and step.phase == "train" else "")
        self.progress.update(self.task, completed=step.done, loss=loss)

    def _new_bar(self, step) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )
        self.close()
        if step.phase == "train":
            self.loss_sum, self.loss_count, self.loss_read = 0.0, 0, 0.0
        self.phase = (step.epoch, step.phase)
        doing = "training" if step.phase == "train" else "scoring dev"
        label = f"epoch {step.epoch}/{step.epochs} {doing}"
        self.progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[loss]}"), TextColumn("ETA"),
                                 TimeRemainingColumn(), console=self.err, transient=True)
        self.progress.start()
        self.task = self.progress.add_task(label, total=step.total, loss="")

    def epoch(self, record, history) -> None:
        self.close()
        self.out.print(tables.epoch_row(record), markup=False)

    def end(self, result) -> None:
        columns = {"dev": result.dev, **({"test": result.test} if result.test else {})}
        if result.stopped_early:
            self.out.print(result.stopped_early, markup=False)
        self.out.print()
        self.out.print(tables.summary_table(
            columns, title=f"best.pt: epoch {result.best_epoch} of {len(result.history)}"))

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
