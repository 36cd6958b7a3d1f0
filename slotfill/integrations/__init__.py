"""Adapters that put a trained slotfill model inside other libraries' pipelines (spaCy);
each needs its own extra and is imported only by that library's entry point."""
