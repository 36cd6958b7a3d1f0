"""Durable file writes: a crash at any moment leaves the old file or the new one, never a
torn mix (checkpoints, run-directory files, exports, predict's --output); a write that
fails (a full disk, no permission) is a WriteError naming the file, and leaves no
temporary file behind."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from slotfill.errors import WriteError


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "wb", **options) -> Iterator[IO]:
    """A temporary file beside `path` to write into; on leaving the block it is fsynced
    and renamed to `path`. If the block raises, the temporary file is removed and `path`
    is as it was; an OSError (ENOSPC, EACCES, ...) comes out as a WriteError."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with failing_writes(path), open(tmp, mode, **options) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def atomic_write(path: Path, write) -> None:
    """Call `write(file)` on a temporary file, fsync it, then rename it to `path`."""
    with atomic_open(path) as f:
        write(f)


@contextlib.contextmanager
def failing_writes(path: Path) -> Iterator[None]:
    """Turn an OSError raised while writing `path` into a WriteError that names it. The
    OSError may hide behind another exception: torch.save reports a failed write as a
    RuntimeError ("[enforce fail at inline_container.cc] unexpected pos ..."), with the
    OSError only as its context."""
    try:
        yield
    except WriteError:
        raise
    except Exception as exc:
        cause = _os_error(exc)
        if cause is None:
            raise
        raise WriteError(path, cause) from exc


def _os_error(exc: BaseException | None) -> OSError | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
