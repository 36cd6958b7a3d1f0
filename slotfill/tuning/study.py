"""Where a `slotfill tune` study lives and how processes share it.

    runs/tune-<study>/study.db       the Optuna storage (SQLite), unless --storage names another
    runs/tune-<study>/trial-NNN/     one run directory per trial (NNN: the trial's number)
    runs/tune-<study>/best.yaml      the best config so far, for `slotfill train`

Processes on one or several machines join a study through its storage, where Optuna hands
each one new trials. A trial records its host and process id; one whose process died
(kill -9, a crash, a machine lost) is failed and queued to run once more: at once when its
process was on this machine, else when its heartbeat in the storage is GRACE seconds old.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import socket
import warnings
from pathlib import Path
from typing import Any

from slotfill.errors import UsageError
from slotfill.threads import usable_cores
from slotfill.training.rundir import RUNS_DIR, RunDir

HEARTBEAT = 60  # seconds between a running trial's heartbeats in the storage
GRACE = 180  # a running trial without a heartbeat for this long has lost its process
MAX_ATTEMPTS = 2  # a trial whose process died runs once more (one stopped by a signal: always)


def study_directory(name: str) -> Path:
    return RUNS_DIR / f"tune-{name}"


def default_storage(directory: Path) -> str:
    return f"sqlite:///{(Path(directory) / 'study.db').resolve()}"


def open_study(name: str, url: str, directory: Path, pruner, fingerprint: dict[str, Any]):
    """Create the study, or join it; a study started with another config or search space
    is refused (its trials would not compare)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # slotfill reports the trials itself
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    try:
        return _open(name, url, directory, pruner, fingerprint)
    except BaseException:
        if created:  # nothing half-made stays behind
            shutil.rmtree(directory, ignore_errors=True)
        raise


def _open(name: str, url: str, directory: Path, pruner, fingerprint: dict[str, Any]):
    import optuna

    with quiet_experimental(), _lock(directory):  # two processes creating one SQLite file
        storage = _storage(url)
        sampler = optuna.samplers.TPESampler(constant_liar=True)  # spreads concurrent trials
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize",
                                    sampler=sampler, pruner=pruner, load_if_exists=True)
        fingerprint = json.loads(json.dumps(fingerprint))  # as the storage gives it back
        stored = study.user_attrs.get("slotfill")
        if stored is None:
            study.set_user_attr("slotfill", fingerprint)
        elif stored != fingerprint:
            raise UsageError(f"Study {name} was started with another config or search space",
                             "\n".join(_differences(stored, fingerprint)) + "\ncontinue it "
                             "with the same config, overrides and --space, or start a new "
                             "study with --study NAME")
    return study


def _storage(url: str):
    import optuna

    parameters = inspect.signature(optuna.storages.RDBStorage).parameters
    callback = ("heartbeat_stale_trial_callback"  # its name since Optuna 4.9
                if "heartbeat_stale_trial_callback" in parameters else "failed_trial_callback")
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine,
                                          heartbeat_interval=HEARTBEAT, grace_period=GRACE,
                                          **{callback: requeue_lost})
    except Exception as exc:  # a malformed URL, a missing driver, an unreachable server
        raise UsageError(f"Cannot open the study storage {url}",
                         f"{type(exc).__name__}: {exc}\n--storage takes a database URL that "
                         "Optuna accepts, e.g. sqlite:///study.db or "
                         "postgresql://user@host/db") from None


@contextlib.contextmanager
def _lock(directory: Path):
    try:
        import fcntl
    except ImportError:  # not on Windows: there, start one process first
        yield
        return
    with open(directory / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def quiet_experimental():
    """Heartbeats and the constant liar are marked experimental in Optuna 3."""
    import optuna
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _differences(stored: dict, wanted: dict) -> list[str]:
    def flat(fingerprint):
        return {f"{section}.{key}": value
                for section, values in fingerprint["config"].items()
                for key, value in values.items()}
    old, new = flat(stored), flat(wanted)
    lines = [f"{key}: {old.get(key)!r} in the study, {new.get(key)!r} here"
             for key in sorted(old.keys() | new.keys()) if old.get(key) != new.get(key)]
    if stored["space"] != wanted["space"]:
        lines.append("the search space differs: the study's is\n"
                     + json.dumps(stored["space"], indent=2))
    return lines


# ---------------------------------------------------------------- lost and stopped trials

def fail_lost_trials(study) -> list[int]:
    """Running trials whose process on this machine is gone: failed and queued again (the
    first process to see one does it, once). Returns their numbers."""
    from optuna.exceptions import OptunaError
    from optuna.trial import TrialState

    host, lost = socket.gethostname(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = trial.user_attrs.get("pid")
        if trial.user_attrs.get("host") != host or pid is None or _alive(pid):
            continue
        try:
            study.tell(trial.number, state=TrialState.FAIL)
        except (ValueError, OptunaError):
            continue  # another process failed it first
        requeue_lost(study, trial)
        lost.append(trial.number)
    return lost


def requeue_lost(study, trial) -> None:
    """A trial whose process died: its run directory says so, and its parameters run once
    more. Also Optuna's callback for trials whose heartbeat stopped."""
    attempt = trial.user_attrs.get("attempt", 1)
    again = attempt < MAX_ATTEMPTS
    _mark(trial, "failed", "its slotfill tune process stopped; " + (
        "the trial was queued to run again" if again else "not retried (it stopped before)"))
    if again:
        requeue(study, trial, attempt + 1)


def requeue(study, trial, attempt: int | None = None) -> None:
    """Queue a trial's parameters to run again as a new trial (any process takes it)."""
    if not trial.params:
        return  # stopped before sampling: nothing to repeat
    study.enqueue_trial(dict(trial.params), user_attrs={
        "retry_of": trial.user_attrs.get("retry_of", trial.number),
        "attempt": attempt or trial.user_attrs.get("attempt", 1)})


def _mark(trial, state: str, reason: str) -> None:
    """Update the status of a trial's run directory when it is on this machine."""
    run_dir = trial.user_attrs.get("run_dir")
    if (run_dir and trial.user_attrs.get("host") == socket.gethostname()
            and RunDir.is_run(Path(run_dir))):
        RunDir(run_dir).write_status(state, reason)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------- sharing the cores

def local_processes(study) -> int:
    """Processes of this study running trials on this machine, this one included."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    pids = {t.user_attrs.get("pid") for t in study.get_trials(deepcopy=False,
                                                              states=(TrialState.RUNNING,))
            if t.user_attrs.get("host") == host}
    return len({pid for pid in pids if pid is not None and _alive(pid)} | {os.getpid()})


def thread_share(threads: int, processes: int) -> int:
    """train.threads for a trial: as configured, unless that is 0 (follow the free cores)
    while several processes of the study train on this machine: then an equal share of
    its cores, so that none starves the others."""
    if threads or processes == 1:
        return threads
    return max(1, usable_cores() // processes)
