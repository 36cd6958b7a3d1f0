"""`slotfill ensemble`: combine trained runs into one model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from slotfill.cli.common import Device, DeviceOption, JsonOption, app, friendly, out


@app.command()
@friendly
def ensemble(
    models: Annotated[list[str], typer.Argument(
        metavar="RUN_DIR...", help="run directories (their best.pt) or checkpoints, trained "
                                   "on the same data")],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="directory for the ensemble (then: --model DIR)")],
    force: Annotated[bool, typer.Option(
        "--force", help="replace an existing run directory at --output")] = False,
    as_json: JsonOption = False,
    device: DeviceOption = Device.cpu,
) -> None:
    """Average trained models into one: tag probabilities (or CRF emissions and
    transitions) and intent probabilities. The result works with --model everywhere."""
    from slotfill.analysis import tables
    from slotfill.runtime import resolve_device
    from slotfill.training.ensemble import build_ensemble

    result = build_ensemble(models, output, force, device=str(resolve_device(device.value)))
    if as_json:
        print(json.dumps({"run": str(result.run_dir), "members": [str(p) for p in
                          result.members], "dev": result.dev, "test": result.test}, indent=2))
        return
    out.print(f"ensemble of {len(result.members)} models:", markup=False)
    for path in result.members:
        out.print(f"  {path}", markup=False)
    columns = {"dev": result.dev, **({"test": result.test} if result.test else {})}
    out.print(tables.summary_table(columns))
    print(result.run_dir)
