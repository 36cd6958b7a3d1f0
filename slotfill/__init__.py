"""slotfill: train, evaluate and run slot-filling taggers, from the command line or Python.

The public API is what this package exports (`__all__`): `load`, `train`, `evaluate`,
`Config`, and the result types `Tagger`, `Result`, `Slot`, `Alternative`, `TrainResult`,
`Evaluation`.
Every other module (`slotfill.models`, `slotfill.training`, ...) is private: it may
change in any release. Names are resolved on first use, so `import slotfill` imports no
torch (`slotfill --help` depends on it).

Examples:
    >>> import slotfill
    >>> result = slotfill.train("bilstm", output="runs/example", force=True, quiet=True,
    ...     overrides={"train.epochs": 1, "model.hidden_size": 16, "train.report": False})
    >>> model = slotfill.load(result.run_dir)
    >>> model.predict(["arrive Taipei on Nov 2nd"])[0].tokens
    ['arrive', 'Taipei', 'on', 'Nov', '2nd']
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Alternative": "slotfill.api",
    "Config": "slotfill.config",
    "Evaluation": "slotfill.api",
    "Result": "slotfill.api",
    "Slot": "slotfill.api",
    "Tagger": "slotfill.api",
    "TrainResult": "slotfill.api",
    "evaluate": "slotfill.api",
    "load": "slotfill.api",
    "train": "slotfill.api",
}
__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from slotfill.api import (
        Alternative,
        Evaluation,
        Result,
        Slot,
        Tagger,
        TrainResult,
        evaluate,
        load,
        train,
    )
    from slotfill.config import Config


def __getattr__(name: str) -> Any:
    """The public names, imported when first used (PEP 562)."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'slotfill' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
