"""Where the shipped configs, gazetteers and sample corpus live; bundled configs by name.

In a wheel they are packaged under `slotfill/_bundled/`; in a source checkout (editable
install, tests) they are the repository's top-level `configs/` and `data/`.
"""

from __future__ import annotations

from pathlib import Path

from slotfill.errors import ConfigError

_PACKAGE = Path(__file__).resolve().parent
DEFAULT_CONFIG = "bilstm"


def bundled_dir(name: str) -> Path:
    """`configs`, `data` or `gazetteers`, wherever this installation keeps them."""
    for candidate in (_PACKAGE / "_bundled" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"slotfill's bundled {name}/ directory is missing from "
                            f"{_PACKAGE}; reinstall slotfill")


def bundled_configs() -> dict[str, Path]:
    """The shipped configs by name (file name without .yaml), sorted."""
    return {p.stem: p for p in sorted(bundled_dir("configs").glob("*.yaml"))}


def config_description(path: Path) -> str:
    """The header comment of a config up to its `Run:` line, as one line."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#") or line.startswith("# Run:"):
            break
        lines.append(line.lstrip("# ").strip())
    return " ".join(lines)


def find_config(arg: str | Path | None) -> Path:
    """A config file: `arg` itself when such a file exists, else the bundled config of
    that name (`rnn`, `bilstm-crf.yaml`), else a ConfigError listing the names."""
    if arg is None:
        return bundled_configs()[DEFAULT_CONFIG]
    path = Path(arg)
    if path.is_file():
        return path
    bundled = bundled_configs()
    name = path.stem if path.suffix in (".yaml", ".yml") and path.parent == Path() else \
        str(arg)
    if name in bundled:
        return bundled[name]
    hint = "" if path.suffix in (".yaml", ".yml") or "/" in str(arg) else (
        "; the first argument without '=' is the config; overrides look like "
        "model.hidden_size=256")
    raise ConfigError(f"Config file not found: {arg}",
                      f"check the path, or name a bundled config{hint}: "
                      f"{', '.join(bundled)} (`slotfill configs` describes them)")


def bundled_gazetteers() -> dict[str, Path]:
    """The shipped gazetteer lists by name (file name without .txt), sorted."""
    return {p.stem: p for p in sorted(bundled_dir("gazetteers").glob("*.txt"))}


def sample_corpus_path(language: str = "en") -> Path:
    """The bundled sample corpus: English in data/, Chinese in data/zh/."""
    root = bundled_dir("data")
    return root if language == "en" else root / language
