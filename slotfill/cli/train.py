"""`slotfill train`: the run, its progress display, and multi-process launching."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated, Optional

import typer

from slotfill.cli.common import SlotfillError, UsageError, app, err, friendly, out
from slotfill.training.console import TrainDisplay  # rich and tables only: no torch
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


RunOutputOption = Annotated[Optional[Path], typer.Option(
    "--output", "-o", help="run directory (default: runs/<config>-<timestamp>/)")]
ForceOption = Annotated[bool, typer.Option(
    "--force", help="replace an existing run directory given by --output")]


@app.command()
@friendly
@reporting_failures(typer.Exit)  # a worker under --nproc tells the launcher, not the user
def train(
    args: Annotated[Optional[list[str]], typer.Argument(
        metavar="[CONFIG] [KEY=VALUE]...",
        help="YAML config file or bundled config name (default: bilstm; `slotfill "
             "configs` lists them) and overrides such as model.hidden_size=256")] = None,
    output: RunOutputOption = None,
    force: ForceOption = False,
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
    display = TrainDisplay(out, err)
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
    output: RunOutputOption = None,
    force: ForceOption = False,
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
    TrainDisplay(out, err).start(RunStart(Path("."), prepared.summary(),
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
