"""Bundled configs: `slotfill configs` lists them, `slotfill init config` writes one out."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from slotfill.cli.common import JsonOption, UsageError, app, friendly, out


@app.command()
@friendly
def configs(as_json: JsonOption = False) -> None:
    """List the bundled configs; `slotfill train NAME` runs one."""
    from slotfill.resources import bundled_configs, config_description

    rows = [{"name": name, "description": config_description(path), "path": str(path)}
            for name, path in bundled_configs().items()]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        out.print(f"{row['name']:<{width}}  {row['description']}", markup=False)


init_app = typer.Typer(no_args_is_help=True, help="Write starting files to edit.")
app.add_typer(init_app, name="init")


@init_app.command("config")
@friendly
def init_config(
    name: Annotated[str, typer.Argument(help="a bundled config (`slotfill configs`)")],
    file: Annotated[Optional[Path], typer.Argument(
        help="where to write it (default: NAME.yaml)")] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite FILE")] = False,
) -> None:
    """Write a bundled config to a file to edit; `slotfill train FILE` then runs it."""
    from slotfill.atomic import atomic_write
    from slotfill.resources import bundled_configs

    bundled = bundled_configs()
    if name not in bundled:
        close = difflib.get_close_matches(name, list(bundled), n=1)
        raise UsageError(f"No bundled config named {name!r}"
                         + (f"; did you mean {close[0]!r}?" if close else ""),
                         "valid: " + ", ".join(bundled))
    file = file or Path(f"{name}.yaml")
    if file.is_dir() or (file.exists() and not force):
        raise UsageError(f"{file} exists already", "pass --force to overwrite it, or "
                                                   "name another file")
    text = bundled[name].read_text(encoding="utf-8")
    text = text.replace(f"slotfill train {name}\n", f"slotfill train {file}\n").replace(
        f"slotfill train {name} ", f"slotfill train {file} ")  # the header's commands
    atomic_write(file, lambda f: f.write(text.encode()))
    out.print(f"wrote {file}; run it with: slotfill train {file}", markup=False)
