"""slotfill: a command-line training toolkit for slot filling.

Importing this package must stay cheap (no torch): `slotfill --help` depends on it.
"""

__version__ = "0.1.0"

import warnings

# torch warns at import when NumPy is absent; slotfill never uses NumPy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
