"""slotfill: a command-line training toolkit for slot filling.

Importing this package must stay cheap (no torch): `slotfill --help` depends on it.
"""

__version__ = "0.1.0"
