"""`slotfill report`: the run report, one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from slotfill.cli.common import (
    DataOption,
    Device,
    DeviceOption,
    ModelOption,
    Split,
    app,
    friendly,
    out,
    pick_model,
)


@app.command()
@friendly
def report(
    model: ModelOption = None,
    data: DataOption = None,
    split: Annotated[Split, typer.Option("--split", help="which split to analyse")] = Split.test,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="file to write (default: report.html in the run directory)")]
        = None,
    device: DeviceOption = Device.cpu,
) -> None:
    """Write report.html: the run, training curves, scores, error breakdown, label
    confusion, scores by length and unseen words, the wrong utterances, calibration.
    One file that opens offline; its numbers are those of `slotfill eval`."""
    from slotfill.runtime import resolve_device
    from slotfill.training.loggers import write_run_report

    written = write_run_report(pick_model(model), data, split.value, output,
                               device=str(resolve_device(device.value)))
    if written.curves is not None:
        out.print(f"wrote {written.curves}", markup=False)
    out.print(f"wrote {written.report} ({written.seconds:.1f} s)", markup=False)
