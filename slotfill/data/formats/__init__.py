"""Corpus formats: one module each, with `NAME`, `DESCRIPTION`, `detect(path)` and
`read(path, options, issues, splits, optional)`; atis, conll, jsonl and tokens also
`write(splits)` for `slotfill data convert`.

Detection tries them in the order of FORMATS: the first whose `detect` accepts the path.
"""

from __future__ import annotations

from pathlib import Path

from slotfill.data.formats import atis, conll, jsonl, labelstudio, massive, rasa, tokens
from slotfill.errors import DataError

FORMATS = {m.NAME: m for m in (atis, massive, tokens, jsonl, labelstudio, rasa, conll)}
WRITABLE = ("atis", "conll", "jsonl", "tokens")


def detect_format(path: Path) -> str:
    """The format of the corpus at `path` (a directory or a file); DataError if none."""
    if not path.exists():
        raise DataError(f"Corpus not found: {path}",
                        "set data.path to a corpus directory or file")
    for name, module in FORMATS.items():
        if module.detect(path):
            return name
    listing = "\n".join(f"  {name}: {m.DESCRIPTION}" for name, m in FORMATS.items())
    raise DataError(f"No corpus found in {path}",
                    f"expected one of these layouts (or set data.format):\n{listing}")
