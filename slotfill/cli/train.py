"""`slotfill train`: the run, its progress display, and multi-process launching."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from slotfill.cli.common import SlotfillError, UsageError, app, err, friendly, out
from slotfill.training.events import TrainingLogger  # plain dataclasses: no torch
from slotfill.training.workers import (  # torch-free until it launches
    WorkerFailed,
    launch,
    plan_devices,
    reporting_failures,
)


def split_train_args(args: list[str]) -> tuple[str | None, list[str]]:
    """The first argument without '=' is the config (a file or a bundled config's name);
    the others are overrides."""
    config, overrides = None, []
    for arg in args:
        if "=" in arg:
            overrides.append(arg)
        elif config is None:
            config = arg
        else:
            raise UsageError(f"Unexpected argument {arg!r}",
                             f"the config is {config!r}; overrides look like "
                             "model.hidden_size=256")
    return config, overrides


@app.command()
@friendly
@reporting_failures(typer.Exit)  # a worker under --nproc tells the launcher, not the user
def train(
    args: Annotated[Optional[list[str]], typer.Argument(
        metavar="[CONFIG] [KEY=VALUE]...",
        help="YAML config file or bundled config name (default: bilstm; `slotfill "
             "configs` lists them) and overrides such as model.hidden_size=256")] = None,
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
    init: Annotated[Optional[str], typer.Option(
        "--init", metavar="RUN_DIR", help="start from the weights of another run "
                                          "(same as train.init=RUN_DIR)")] = None,
    nproc: Annotated[int, typer.Option(
        "--nproc", min=1, help="worker processes on this machine (torch.distributed "
                               "data parallel: gloo on CPU, nccl on GPU)")] = 1,
) -> None:
    """Train a tagger; the last line printed is the run directory."""
    from slotfill.config import load_config
    from slotfill.threads import set_waiting
    from slotfill.training.rundir import RunDir, check_output

    set_waiting("active")  # before torch starts: training spins (slotfill/threads.py)

    if resume is not None and (args or output or dry_run or init):
        raise UsageError("--resume takes no config, overrides, --output, --init or "
                         "--dry-run", "a resumed run uses its own config and directory")
    if output is not None and not dry_run:
        check_output(output, force)  # before any work, so a clash fails at once
    rank = int(os.environ.get("RANK", "0"))
    out.quiet = err.quiet = rank != 0  # under torchrun, rank 0 speaks for all
    cfg = name = None
    if resume is None:
        config_arg, overrides = split_train_args(args or [])
        if init is not None:
            overrides.append(f"train.init={init}")
        cfg = load_config(config_arg, overrides)
        name = Path(config_arg).stem if config_arg else "bilstm"
        if nproc == 1:
            out.print("[bold]Resolved config[/]")
            out.print(cfg.to_yaml().rstrip(), markup=False)

    from slotfill.training import run as training

    if nproc > 1:  # validate here, then let torchrun start the workers
        raise typer.Exit(_launch_workers(nproc, args or [], resume, cfg, name, output, force,
                                         dry_run))
    display = TrainDisplay()
    try:
        if resume is not None:
            run_dir = resume
            training.resume(resume, loggers=[display])
        else:
            prepared = training.prepare(cfg)
            if dry_run:
                _show_dry_run(cfg, prepared)
                return
            dist = _join_workers(cfg)
            run_dir = _shared_run_dir(dist, lambda: RunDir.create(name, output, force).path)
            training.train(cfg, run_dir, prepared, loggers=[display], dist=dist)
    except training.TrainingInterrupted as exc:
        display.close()
        err.print(f"Interrupted {exc.where}: saved {exc.run_dir / 'last.pt'}.")
        workers = int(os.environ.get("WORLD_SIZE", "1"))
        err.print(f"Resume with: slotfill train --resume {exc.run_dir}"
                  + (f" --nproc {workers}" if workers > 1 else ""), markup=False)
        raise typer.Exit(130 if exc.signum == signal.SIGINT else 128 + exc.signum) from None
    if rank == 0:
        report = Path(run_dir) / "report.html"
        if report.is_file():
            out.print(f"report: {report}", markup=False)
        print(run_dir)


@app.command()
@friendly
def distill(
    args: Annotated[Optional[list[str]], typer.Argument(
        metavar="[CONFIG] [KEY=VALUE]...",
        help="the student's config (default: bilstm) and overrides, as for train")] = None,
    teacher: Annotated[Optional[list[str]], typer.Option(
        "--teacher", metavar="RUN", help="a run directory or checkpoint to learn from "
        "(a transformer, an ensemble, any run with the student's tags and intents); "
        "repeat it for several teachers, whose distributions are averaged")] = None,
    unlabeled: Annotated[Optional[Path], typer.Option(
        "--unlabeled", metavar="FILE", help="unlabelled utterances, one a line, that the "
        "teachers label; they join the training data")] = None,
    temperature: Annotated[Optional[float], typer.Option(
        "--temperature", help="softmax temperature of the distributions (default 1)")]
        = None,
    alpha: Annotated[Optional[float], typer.Option(
        "--alpha", help="weight of the gold labels' loss; the teachers' gets 1 - alpha "
                        "(default 0.5)")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="run directory (default: runs/<config>-<timestamp>/)")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="replace an existing run directory given by --output")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="validate the config, teachers and corpus, train nothing")] = False,
) -> None:
    """Train a student tagger from teachers and the gold labels (knowledge distillation);
    the same as `slotfill train` with the config's distill section. The student is an
    ordinary run: eval, predict, serve and export take it."""
    if not teacher:
        raise UsageError("No teacher given", "pass --teacher RUN_DIR (once per teacher)")
    overrides = [f"distill.teachers={','.join(teacher)}"]
    for key, value in (("unlabeled", unlabeled), ("temperature", temperature),
                       ("alpha", alpha)):
        if value is not None:
            overrides.append(f"distill.{key}={value}")
    train(args=[*(args or []), *overrides], output=output, force=force, dry_run=dry_run)


def _launch_workers(nproc: int, args: list[str], resume: Path | None, cfg, name: str | None,
                    output: Path | None, force: bool, dry_run: bool) -> int:
    """Check the devices, the config and the corpus, create the run directory, then run
    `slotfill train` in nproc processes through torchrun; returns their exit code. A
    worker's failure becomes one message (WorkerFailed), and the run stays resumable."""
    from slotfill.training.prepare import prepare
    from slotfill.training.rundir import RunDir

    if "WORLD_SIZE" in os.environ:
        raise UsageError("--nproc inside torchrun", "torchrun already started the workers; "
                         "drop --nproc")
    if resume is not None:
        device = RunDir.open(resume).read_config().get("train", {}).get("device", "auto")
    else:
        device = cfg.train.device
    kind = plan_devices(device, nproc)  # too few GPUs: exit 2 before any worker starts
    if resume is not None:
        run_dir, argv = resume, ["train", "--resume", str(resume)]
    else:
        prepare(cfg)
        if dry_run:
            out.print("dry run: config and corpus are valid; nothing was trained")
            return 0
        run_dir = RunDir.create(name, output, force).path
        argv = ["train", *args, "--output", str(run_dir)]
    where = "one GPU each, nccl" if kind == "cuda" else "CPU, gloo"
    out.print(f"starting {nproc} worker processes ({where})")
    try:
        return launch(nproc, argv)
    except WorkerFailed as exc:
        raise _worker_failure(exc, RunDir(run_dir), nproc) from None


def _worker_failure(exc, run, nproc: int) -> SlotfillError:
    """The worker's error as the user sees it, also recorded in status.json; unless it is
    a user error (whose detail says what to fix), with how to continue the run."""
    from slotfill.cli.common import _state

    detail = exc.detail
    if exc.trace:  # a bug: its traceback on request
        if _state.get("debug"):
            err.print(exc.trace.rstrip(), markup=False, highlight=False)
        detail = "an unexpected error; `slotfill --debug train ...` shows the worker's traceback"
    resume = f"slotfill train --resume {run.path} --nproc {nproc}"
    status = f"worker {exc.rank}: {exc.title}"
    if not exc.user_error:
        follow = (f"The run can continue from its last.pt: {resume}" if run.last.is_file()
                  else f"Nothing was saved in {run.path} yet; start the run again.")
        detail = f"{detail}\n{follow}" if detail else follow
        status += f"; continue with: {resume}" if run.last.is_file() else ""
    run.write_status("failed", status)
    error = SlotfillError(f"{exc.title} (worker {exc.rank} of {nproc})", detail)
    error.exit_code = exc.exit_code
    return error


def _show_dry_run(cfg, prepared) -> None:
    from slotfill.models import build_model
    from slotfill.runtime import configure_threads, resolve_device
    from slotfill.training.events import RunStart

    model = build_model(cfg.model, prepared.vocabs)
    threads = configure_threads(cfg.train.threads).describe()  # what training would use
    TrainDisplay().start(RunStart(Path("."), prepared.summary(),
                                  str(resolve_device(cfg.train.device)),
                                  sum(p.numel() for p in model.parameters()), 1,
                                  cfg.train.epochs, threads=threads), header=False)
    out.print("dry run: config and corpus are valid; nothing was trained")


def _join_workers(cfg):
    """The torch.distributed process group when run under torchrun (else one process)."""
    from slotfill.runtime import resolve_device
    from slotfill.training.distributed import Dist
    return Dist.from_env(resolve_device(cfg.train.device))


def _shared_run_dir(dist, create) -> Path:
    """Rank 0 creates the run directory; every rank gets its path (or its error)."""
    from slotfill.errors import RunDirError
    outcome = None
    if dist.is_main:
        try:
            outcome = ("ok", str(create()))
        except SlotfillError as exc:
            outcome = ("error", exc.title, exc.detail)
    outcome = dist.broadcast(outcome)
    if outcome[0] == "error":
        raise RunDirError(outcome[1], outcome[2])
    return Path(outcome[1])


class TrainDisplay(TrainingLogger):
    """The console: a summary at the start, a progress bar on stderr while an epoch trains
    and while dev is scored (epoch, running loss, time left), one row per epoch on
    stdout, the final scores at the end. A training logger (events.TrainingLogger)."""

    LOSS_EVERY = 0.25  # seconds between reads of the loss (a read may wait for a GPU)

    def __init__(self) -> None:
        self.progress = None
        self.phase = None
        self.loss_sum, self.loss_count, self.loss_read = 0.0, 0, 0.0

    def start(self, run, header: bool = True) -> None:
        from slotfill.analysis import tables
        summary = run.corpus
        sizes = ", ".join(f"{k} {v}" for k, v in summary["sizes"].items())
        out.print(f"corpus {summary['corpus']} ({summary['format']}): {sizes} utterances; "
                  f"{summary['words']} words, {summary['tags']} tags", markup=False)
        if "gazetteers" in summary:
            lists = ", ".join(f"{name} ({n})" for name, n in summary["gazetteers"].items())
            out.print(f"gazetteers: {lists} entries", markup=False)
        for warning in summary["warnings"]:
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
        if not err.is_terminal:
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
                                 TimeRemainingColumn(), console=err, transient=True)
        self.progress.start()
        self.task = self.progress.add_task(label, total=step.total, loss="")

    def epoch(self, record, history) -> None:
        from slotfill.analysis import tables
        self.close()
        out.print(tables.epoch_row(record), markup=False)

    def end(self, result) -> None:
        from slotfill.analysis import tables
        columns = {"dev": result.dev, **({"test": result.test} if result.test else {})}
        out.print()
        out.print(tables.summary_table(
            columns, title=f"best.pt: epoch {result.best_epoch} of {len(result.history)}"))

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
