"""Taggers: embedder -> recurrent encoder -> tag head (see tagger.py)."""

from slotfill.models.tagger import Tagger, build_model

__all__ = ["Tagger", "build_model"]
