"""Where the shipped configs and the sample corpus live.

In a wheel they are packaged under `slotfill/_bundled/`; in a source checkout (editable
install, tests) they are the repository's top-level `configs/` and `data/`.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
DEFAULT_CONFIG = "bilstm.yaml"


def bundled_dir(name: str) -> Path:
    """`configs` or `data`, wherever this installation keeps them."""
    for candidate in (_PACKAGE / "_bundled" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"slotfill's bundled {name}/ directory is missing from "
                            f"{_PACKAGE}; reinstall slotfill")


def default_config_path() -> Path:
    return bundled_dir("configs") / DEFAULT_CONFIG


def sample_corpus_path() -> Path:
    return bundled_dir("data")
