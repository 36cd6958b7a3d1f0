"""The documentation's generated pages, written at build time (mkdocs-gen-files), so they
cannot drift from the code: the config reference from the config dataclasses, the CLI
reference from the Typer app, and one page holding every benchmarks/results/*.md file.

Run by `mkdocs build`; `python docs/gen_pages.py` prints the pages instead, and importing
it (as tests/test_config.py does) writes nothing.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def config_reference() -> str:
    """Every key of every section: type, default, allowed values and its help text."""
    from slotfill.config import SECTIONS

    lines = [
        "# Config reference",
        "",
        "Every key a config may set, generated from the config dataclasses "
        "(`slotfill/config.py`), which validation reads as well. A config is one YAML "
        "file with the sections below; any key can be overridden on the command line as "
        "`section.key=value` (`slotfill train bilstm model.hidden_size=256`) or from Python "
        "(`slotfill.train(\"bilstm\", overrides={\"model.hidden_size\": 256})`). Unknown keys, "
        "wrong types, out-of-range values and invalid choices are reported together, with "
        "the nearest valid key for typos, before any work starts; a key that does not "
        "apply (such as `model.nonlinearity` for `lstm`) is an error rather than silently "
        "ignored. [Configs](../how-to/configs.md) says which bundled config uses what.",
        "",
    ]
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        lines += [f"## `{section}`", "", "| key | type | default | meaning |",
                  "|---|---|---|---|"]
        for f in dataclasses.fields(cls):
            meta = f.metadata
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            text = meta["help"] + _limits(meta)
            if meta.get("see"):
                text += f" ([more](../{meta['see']}))"
            lines.append(f"| `{section}.{f.name}` | `{_type_name(hints[f.name])}` | "
                         f"`{_yaml_value(default)}` | {text} |")
        lines.append("")
    return "\n".join(lines)


def _type_name(hint) -> str:
    text = str(hint) if typing.get_origin(hint) else hint.__name__
    return text.replace("typing.", "").replace("NoneType", "None").replace("|", "\\|")


def _yaml_value(value) -> str:
    import yaml
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _limits(meta: dict) -> str:
    parts = []
    if meta["choices"]:
        parts.append("one of " + ", ".join(f"`{c}`" for c in meta["choices"]))
    if meta["min"] is not None:
        parts.append(f">= {meta['min']}")
    if meta["max"] is not None:
        parts.append(f"{'<' if meta['max_exclusive'] else '<='} {meta['max']}")
    return f" ({'; '.join(parts)})" if parts else ""


def cli_reference() -> str:
    """What `slotfill COMMAND --help` prints, for every command and sub-command of the
    Typer app, in the order `slotfill --help` lists them."""
    import typer

    from slotfill.cli import app

    lines = ["# Command-line reference", "",
             "Generated from the Typer app (`slotfill/cli/`): what `slotfill --help` and "
             "`slotfill COMMAND --help` print. [Commands](commands.md) describes what the "
             "commands do and how they fit together.", ""]
    lines += _help_section(app, [], typer.main.get_command(app))
    return "\n".join(lines)


def _help_section(app, path: list[str], command) -> list[str]:
    from typer.testing import CliRunner

    name = " ".join(["slotfill", *path])
    result = CliRunner().invoke(app, [*path, "--help"], prog_name="slotfill",
                                terminal_width=100)
    if result.exit_code != 0:
        raise RuntimeError(f"{name} --help failed: {result.output}")
    lines = [f"## `{name}`", "", "```text", result.output.rstrip(), "```", ""]
    if hasattr(command, "list_commands"):
        for name in command.list_commands(None):
            lines += _help_section(app, [*path, name], command.get_command(None, name))
    return lines


def benchmark_results() -> str:
    """Every results file of benchmarks/, as its benchmark wrote it, headings one level
    down so that each file is a section of this page."""
    lines = ["# Benchmark results", "",
             "Every file under `benchmarks/results/`, included as its benchmark wrote it: "
             "each names the command that regenerates it, the date and the machine. "
             "[Results](index.md) discusses the accuracy tables.", ""]
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"^(#+) ", r"\1# ", text, flags=re.M)
        lines += [f"<!-- benchmarks/results/{path.name} -->", text.rstrip(), "",
                  f"*File: `benchmarks/results/{path.name}`*", ""]
    return "\n".join(lines)


def with_tables(page: str) -> str:
    """A hand-written page whose `<!-- table FILE N -->` lines become the N-th table of
    FILE (a benchmark's results file), so that no number is copied by hand."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")

    def table(match: re.Match) -> str:
        source = (ROOT / match.group(1)).read_text(encoding="utf-8")
        tables = re.findall(r"(?:^\|.*\n)+", source, flags=re.M)
        return tables[int(match.group(2)) - 1].rstrip()
    return re.sub(r"^<!-- table (\S+) (\d+) -->$", table, text, flags=re.M)


PAGES = {
    "results/index.md": lambda: with_tables("results/index.md"),
    "how-to/pretrained.md": lambda: with_tables("how-to/pretrained.md"),
    "tutorials/label-studio.md": lambda: with_tables("tutorials/label-studio.md"),
    "reference/config.md": config_reference,
    "reference/cli.md": cli_reference,
    "results/benchmarks.md": benchmark_results,
}


def _write_pages() -> None:
    import mkdocs_gen_files

    for name, make in PAGES.items():
        with mkdocs_gen_files.open(name, "w") as handle:
            handle.write(make())
    for picture in sorted((ROOT / "benchmarks" / "results").glob("*.svg")):
        # the pictures the results files show, beside the page that includes them
        with mkdocs_gen_files.open(f"results/{picture.name}", "w") as handle:
            handle.write(picture.read_text(encoding="utf-8"))


if __name__ == "<run_path>":  # run by mkdocs-gen-files (runpy.run_path)
    _write_pages()
elif __name__ == "__main__":
    for name, make in PAGES.items():
        print(f"===== {name}\n{make()}")
