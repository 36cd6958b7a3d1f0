"""Dynamic batching for `slotfill serve`: requests that arrive together share a forward pass.

One forward pass at a time runs in a worker thread. While it runs, new requests queue;
when it ends, everything queued (up to `max_batch` utterances) goes into the next pass.
So under load each pass tags many requests for little more than the cost of one. Before
starting a pass the batcher waits, at most `max_wait` seconds, while fewer requests are
queued than are due, or while the server is still receiving a request (`arriving`). Due
are the requests that queued while the previous pass ran, and as many as it took:
concurrent clients answered together send their next requests within a millisecond or
two of each other. So clients that drifted into two groups, each pass taking one group
while the other waits, are gathered into one pass again: one process does its HTTP work
and its forward passes mostly in turn, and fewer, larger passes cost less CPU per
request. A lone client's pass took one request, so it never waits.

A request is never split across passes; one larger than `max_batch` runs alone. A request
once submitted is always answered (its result, or the pass's error); `pending` counts
them, so that the server can refuse new ones while too many wait (serve.py: 503).
Results are what tagging each request on its own gives (the tagger's results do not
depend on what else is in the batch; tests/test_serve_batching.py checks it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

Run = Callable[[list[Any]], list[Any]]  # items in, one result per item out


@dataclass
class _Request:
    items: Sequence[Any]
    done: asyncio.Future = field(repr=False)


class Batcher:
    """`await batcher.submit(items)` -> `run(items)`'s results, with the items of
    concurrent calls concatenated into one `run` call. Use from one event loop."""

    def __init__(self, run: Run, max_batch: int = 64, max_wait: float = 0.002) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        if max_wait < 0:
            raise ValueError(f"max_wait must be >= 0 seconds, not {max_wait}")
        self.run, self.max_batch, self.max_wait = run, max_batch, max_wait
        self.queue: list[_Request] = []
        self.arriving = 0  # requests being received that will be submitted soon
        self.expected = 1  # requests due for the next pass
        self.passes = 0  # forward passes run so far (for tests and logs)
        self.running = 0  # requests in the pass that runs now
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None

    @contextlib.contextmanager
    def receiving(self) -> Iterator[None]:
        """Marks a request whose body is being read: a pass about to start waits for it
        (at most max_wait)."""
        self.arriving += 1
        try:
            yield
        finally:
            self.arriving -= 1
            if self._wake is not None and self._loop is asyncio.get_running_loop():
                self._wake.set()

    @property
    def pending(self) -> int:
        """Requests accepted and not yet answered: being received, queued, or in the
        running pass."""
        return self.arriving + len(self.queue) + self.running

    async def submit(self, items: Sequence[Any]) -> list[Any]:
        if not items:
            return []
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (a test client's): fresh state
            self._loop, self._wake, self._worker = loop, asyncio.Event(), None
        request = _Request(items, loop.create_future())
        self.queue.append(request)
        self._wake.set()
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._serve())
        return await request.done

    async def _serve(self) -> None:
        """Runs passes while requests wait; ends when the queue is empty."""
        while self.queue:
            await self._gather()
            batch = self._take()
            items = [item for request in batch for item in request.items]
            self.running = len(batch)
            try:
                results = await asyncio.to_thread(self.run, items)
                if len(results) != len(items):
                    raise RuntimeError(f"run returned {len(results)} results for "
                                       f"{len(items)} items")
            except Exception as exc:  # every request of the pass gets the error
                for request in batch:
                    if not request.done.done():
                        request.done.set_exception(exc)
            else:
                start = 0
                for request in batch:
                    end = start + len(request.items)
                    if not request.done.done():  # its client may have gone away
                        request.done.set_result(results[start:end])
                    start = end
                self.passes += 1
            finally:
                self.running = 0
            # due next: the requests that queued during this pass, and the next ones of
            # the clients it has just answered
            self.expected = len(batch) + len(self.queue)

    async def _gather(self) -> None:
        """Wait (at most max_wait) while more requests are due and the batch is not
        full."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        await asyncio.sleep(0)  # let requests whose bytes are already here be queued
        while ((self.arriving or len(self.queue) < self.expected)
               and self._queued() < self.max_batch):
            left = deadline - loop.time()
            if left <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)

    def _queued(self) -> int:
        return sum(len(request.items) for request in self.queue)

    def _take(self) -> list[_Request]:
        """The oldest requests whose items fit in max_batch (at least one request)."""
        batch, size = [], 0
        while self.queue and (not batch or size + len(self.queue[0].items) <= self.max_batch):
            request = self.queue.pop(0)
            batch.append(request)
            size += len(request.items)
        return batch
