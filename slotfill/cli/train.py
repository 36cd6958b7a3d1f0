"""`slotfill train`: the run, its progress display, and multi-process launching."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated, Optional

import typer

from slotfill.cli.common import SlotfillError, UsageError, app, err, friendly, out


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
    nproc: Annotated[int, typer.Option(
        "--nproc", min=1, help="worker processes on this machine (torch.distributed "
                               "data parallel: gloo on CPU, nccl on GPU)")] = 1,
) -> None:
    """Train a tagger; the last line printed is the run directory."""
    from slotfill.config import load_config
    from slotfill.resources import default_config_path
    from slotfill.rundir import create_run_dir

    if resume is not None and (args or output or dry_run):
        raise UsageError("--resume takes no config, overrides, --output or --dry-run",
                         "a resumed run uses its own config and directory")
    rank = int(os.environ.get("RANK", "0"))
    out.quiet = err.quiet = rank != 0  # under torchrun, rank 0 speaks for all
    display = TrainDisplay()
    cfg = name = None
    if resume is None:
        config_path, overrides = split_train_args(args or [])
        cfg = load_config(config_path, overrides)
        name = Path(config_path).stem if config_path else default_config_path().stem
        if nproc == 1:
            out.print("[bold]Resolved config[/]")
            out.print(cfg.to_yaml().rstrip(), markup=False)

    from slotfill import train as training

    if nproc > 1:  # validate here, then let torchrun start the workers
        raise typer.Exit(_launch_workers(nproc, args or [], resume, cfg, name, output, force,
                                         dry_run))
    try:
        if resume is not None:
            run_dir = resume
            result = training.resume(resume, on_start=display.start, on_batch=display.batch,
                                     on_epoch=display.epoch)
        else:
            prepared = training.prepare(cfg)
            if dry_run:
                _show_dry_run(cfg, prepared, display)
                return
            dist = _join_workers(cfg)
            run_dir = _shared_run_dir(dist, lambda: create_run_dir(name, output, force))
            result = training.train(cfg, run_dir, prepared, on_start=display.start,
                                    on_batch=display.batch, on_epoch=display.epoch,
                                    dist=dist)
    except training.TrainingInterrupted as exc:
        display.close()
        err.print(f"Interrupted {exc.where}: saved {exc.run_dir / 'last.pt'}.")
        workers = int(os.environ.get("WORLD_SIZE", "1"))
        err.print(f"Resume with: slotfill train --resume {exc.run_dir}"
                  + (f" --nproc {workers}" if workers > 1 else ""), markup=False)
        raise typer.Exit(130 if exc.signum == signal.SIGINT else 128 + exc.signum) from None
    finally:
        display.close()

    from slotfill import report
    if rank != 0:
        return
    columns = {"dev": result.dev, **({"test": result.test} if result.test else {})}
    out.print()
    out.print(report.summary_table(
        columns, title=f"best.pt: epoch {result.best_epoch} of {len(result.history)}"))
    print(run_dir)


def _launch_workers(nproc: int, args: list[str], resume: Path | None, cfg, name: str | None,
                    output: Path | None, force: bool, dry_run: bool) -> int:
    """Check the config and corpus, create the run directory, then run `slotfill train`
    in nproc processes through torchrun; returns their exit code."""
    from slotfill import train as training
    from slotfill.distributed import launch
    from slotfill.rundir import create_run_dir

    if "WORLD_SIZE" in os.environ:
        raise UsageError("--nproc inside torchrun", "torchrun already started the workers; "
                         "drop --nproc")
    if resume is not None:
        return launch(nproc, ["train", "--resume", str(resume)])
    training.prepare(cfg)
    if dry_run:
        out.print("dry run: config and corpus are valid; nothing was trained")
        return 0
    run_dir = create_run_dir(name, output, force)
    return launch(nproc, ["train", *args, "--output", str(run_dir)])


def _show_dry_run(cfg, prepared, display) -> None:
    from slotfill.models import build_model
    model = build_model(cfg.model, prepared.vocabs)
    display.start({**prepared.summary(), "device": cfg.train.device,
                   "parameters": sum(p.numel() for p in model.parameters())}, header=False)
    out.print("dry run: config and corpus are valid; nothing was trained")


def _join_workers(cfg):
    """The torch.distributed process group when run under torchrun (else one process)."""
    from slotfill.distributed import Dist
    from slotfill.runtime import resolve_device
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
        processes = summary.get("processes", 1)
        out.print(f"model: {summary['parameters']:,} parameters on {summary['device']}"
                  + (f", {processes} processes" if processes > 1 else ""))
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
