"""Where a running `slotfill serve` spends its CPU: py-spy samples of all its processes
and threads while `benchmarks/serve_load.py --profile` loads it, grouped by what the
code does. py-spy (`pip install py-spy`) is a sampling profiler that reads the stacks
from outside the process, so the server runs unchanged; it needs to be allowed to
ptrace the server (as root, or with kernel.yama.ptrace_scope 0).

A thread that waits (for the GIL, a socket, a lock) is not sampled, so the share of
samples of a group is its share of the server's CPU time; time in C code (torch, uvloop,
httptools, json's encoder) counts for the Python frame that called it. Threads without
Python (torch's intra-op workers, when torch has more than one) are not sampled at all:
serve_load.py's CPU split by thread, from /proc, counts them.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

# what each thread's samples are grouped by: the module of the innermost Python frame
LOOP_GROUPS = [  # the event loop's thread: everything but the forward passes
    ("HTTP protocol (uvicorn, httptools)", r"(^|/)(uvicorn|httptools)/"),
    ("FastAPI, Starlette, pydantic", r"(^|/)(fastapi|starlette|pydantic|anyio)/"),
    ("JSON (json module)", r"(^|/)json/"),
    ("request handling (slotfill: body, limits, tokenizer, batcher)", r"(^|/)slotfill/"),
]
LOOP_REST = "event loop, tasks, threads (uvloop, asyncio)"
TAGGING_GROUPS = [  # the forward passes' threads (asyncio.to_thread, torch's own)
    ("tagging: model in torch", r"(^|/)torch/"),
    ("tagging: model in Python (decoding, confidences)", r"(^|/)slotfill/models/"),
]
TAGGING_REST = "tagging: batches in, results out"
GROUPS = [name for name, _ in LOOP_GROUPS] + [LOOP_REST] + \
         [name for name, _ in TAGGING_GROUPS] + [TAGGING_REST]


def available() -> bool:
    return shutil.which("py-spy") is not None


@contextlib.contextmanager
def recording(pid: int, rate: int = 200) -> Iterator[dict[str, float]]:
    """Sample the process `pid` and its descendants while the block runs; the dict it
    yields is filled, when the block ends, with each group's share of the samples."""
    shares: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stacks.txt"
        spy = subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--subprocesses",
                                "--threads", "--nonblocking", "--rate", str(rate),
                                "--format", "raw", "--output", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)  # attached to every process before the load starts
        try:
            yield shares
        finally:
            spy.send_signal(signal.SIGINT)  # py-spy writes its samples and exits
            _, problems = spy.communicate(timeout=60)
        if not out.is_file():
            raise RuntimeError(f"py-spy wrote no samples: {problems.strip()[-500:]}")
        shares.update(group_shares(out.read_text(encoding="utf-8", errors="replace")))


def group_shares(raw: str) -> dict[str, float]:
    """Each group's share of the samples of py-spy's raw output (one line per stack:
    `process ...;thread (TID): NAME;FRAME;...;FRAME COUNT`, frames `func (path:line)`,
    root first)."""
    counts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        at = next((i for i, f in enumerate(frames) if f.startswith("thread (")), None)
        if at is None or not n.isdigit():
            continue
        counts[group(frames[at], frames[at + 1:])] += int(n)
    total = sum(counts.values()) or 1
    return {name: counts[name] / total for name in GROUPS}


def group(thread: str, frames: list[str]) -> str:
    """The group of one sample of `thread` ("thread (TID): NAME") with these frames."""
    leaf = re.search(r"\(([^()]*):\d+\)$", frames[-1]) if frames else None
    module = leaf.group(1) if leaf else ""
    if thread.endswith(": MainThread"):
        groups, rest = LOOP_GROUPS, LOOP_REST
    else:
        groups, rest = TAGGING_GROUPS, TAGGING_REST
    return next((name for name, pattern in groups if re.search(pattern, module)), rest)
