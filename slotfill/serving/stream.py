"""Tag a stream of utterances in constant memory: read lazily in batches, results yielded
as each batch is tagged, in input order, one per utterance (an empty one for a line
without words); optionally over several worker processes. `slotfill predict` and
`Tagger.predict` use it.

    LineReader(paths) ─► batches of BATCH lines ─► Predictor.predict ─► results
                                 └─► or N processes, each with its model ─► in order
"""

from __future__ import annotations

import codecs
import concurrent.futures
import multiprocessing
import os
import stat
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from slotfill.errors import DataError, SlotfillError
from slotfill.serving.predict import Predictor

# Lines per batch: memory stays at a few batches whatever the input's size, and a batch
# of 256 utterances already fills the forward pass (Predictor's own batch size).
BATCH = 256
WARNINGS_SHOWN = 5  # lines named one by one before only their count is reported


class LineReader:
    """The lines of files (`-` is stdin) one after another, read lazily: each line is
    one utterance, without its line ending (LF or CRLF; a UTF-8 BOM at a file's start is
    dropped). Bytes that are not UTF-8 are repaired, not refused: read as U+FFFD, the
    line named in `warnings` (the first few) and counted in `repaired`, so that the
    output keeps one record per input line. `position` is the bytes read so far, `size`
    their total when every input is a regular file (for a progress display's estimate)."""

    def __init__(self, paths: Iterable[str | Path]) -> None:
        self.paths = [str(p) for p in paths]
        self.position = 0
        self.size = _total_size(self.paths)
        self.warnings: list[str] = []
        self.repaired = 0

    def __iter__(self) -> Iterator[str]:
        for name in self.paths:
            shown = "<stdin>" if name == "-" else name
            try:
                handle = sys.stdin.buffer if name == "-" else open(name, "rb")
            except OSError as exc:
                raise DataError(f"Cannot read {name}", exc.strerror or str(exc)) from None
            try:
                yield from self._lines(handle, shown)
            except OSError as exc:
                raise DataError(f"Cannot read {shown}", exc.strerror or str(exc)) from None
            finally:
                if name != "-":
                    handle.close()

    def _lines(self, handle: BinaryIO, name: str) -> Iterator[str]:
        for number, raw in enumerate(handle, 1):
            self.position += len(raw)
            raw = raw.rstrip(b"\n").removesuffix(b"\r")
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.repaired += 1
                if len(self.warnings) < WARNINGS_SHOWN:
                    self.warnings.append(f"{name}:{number}: not UTF-8 ({exc.reason} at "
                                         f"byte {exc.start}); read with U+FFFD in its place")
                yield raw.decode("utf-8", errors="replace")


def _total_size(paths: list[str]) -> int | None:
    total = 0
    for name in paths:
        try:
            info = os.fstat(sys.stdin.fileno()) if name == "-" else os.stat(name)
        except (OSError, ValueError):  # ValueError: a stdin without a file descriptor
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        total += info.st_size
    return total


def batches(items: Iterable, size: int = BATCH) -> Iterator[list]:
    """`items` in lists of `size` (the last one shorter), read lazily."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def tag_stream(predictor: Predictor, texts: Iterable[str], batch_size: int = BATCH,
               workers: int = 1, n_best: int | None = None) -> Iterator[dict]:
    """Predictor.predict's results for `texts` (with `n_best` sequences each), one per
    text and in order, yielded a batch at a time; with `workers` > 1, the batches are
    tagged in that many processes (each loads the model once and takes its share of the
    cores)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if n_best is not None:  # refused before any input is read
        predictor.check_n_best(n_best)
    chunks = batches(texts, batch_size)
    if workers == 1:
        for batch in chunks:
            yield from predictor.predict(batch, n_best=n_best)
    else:
        yield from _in_processes(predictor, chunks, workers, n_best)


def _in_processes(predictor: Predictor, chunks: Iterator[list[str]],
                  workers: int, n_best: int | None) -> Iterator[dict]:
    """Batches tagged by `workers` processes, results in input order. At most two
    batches per process are in flight, so the input is read only as fast as it is
    tagged and memory stays flat."""
    from slotfill.threads import usable_cores

    threads = max(1, usable_cores() // workers)
    # spawn, not fork: a forked copy of a process whose torch has started threads can hang
    context = multiprocessing.get_context("spawn")
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker,
        initargs=(str(predictor.path), str(predictor.device), threads))
    pending: deque[concurrent.futures.Future] = deque()
    try:
        for batch in chunks:
            pending.append(pool.submit(_tag, batch, n_best))
            if len(pending) >= 2 * workers:
                yield from _result(pending.popleft())
        while pending:
            yield from _result(pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _result(future: concurrent.futures.Future) -> list[dict]:
    try:
        return future.result()
    except concurrent.futures.process.BrokenProcessPool as exc:
        raise SlotfillError("A worker process of predict stopped",
                            f"{exc}; run without --workers to see the error") from None


_worker_predictor: Predictor | None = None  # the model of this worker process


def _start_worker(checkpoint: str, device: str, threads: int) -> None:
    import torch

    global _worker_predictor
    torch.set_num_threads(threads)
    _worker_predictor = Predictor(checkpoint, device=device)


def _tag(batch: list[str], n_best: int | None) -> list[dict]:
    return _worker_predictor.predict(batch, n_best=n_best)
