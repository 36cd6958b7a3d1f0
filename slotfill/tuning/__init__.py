"""Hyperparameter search on Optuna (`slotfill tune`): space (search-space files and the
default spaces), study (storage, shared trials, lost ones), trial (one trial as a run
directory, pruning), results (rows, best trial), tuner (the study from start to end)."""
