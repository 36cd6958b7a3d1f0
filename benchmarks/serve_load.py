"""Load test of `slotfill serve`: one keep-alive client's latency, then requests/s and
latency under concurrent clients.

    python benchmarks/serve_load.py [--model CKPT|RUN_DIR] [--requests 2000]
        [--concurrency 16] [--quick] [--output benchmarks/results/serve.md]
        [-- SERVE_OPTION...]

Starts `slotfill serve` as a subprocess on a free loopback port (options after `--` go
to it, e.g. `-- --max-batch 1`), waits for /health, then, each after a warm-up round
that is not counted, with one utterance of the bundled corpus's test split per request:

1. one client, one request at a time on one keep-alive connection, with Python's
   `http.client` and with `httpx.Client` (`--latency-requests` each): p50 and p99;
2. `--requests` POST /predict requests with `--concurrency` in flight, each client on
   its own keep-alive connection, from a lean asyncio HTTP/1.1 client (a load generator
   should cost little next to the server it measures; both share the machine), and
   the same with `httpx.AsyncClient` (a client people use).

Reports requests/s, p50/p99/max latency, errors (non-200 answers or exceptions) and the
server's CPU time per request; exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from importlib.metadata import version
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import command_line, describe, load_average, shown_path  # noqa: E402
from slotfill.config import parse_yaml  # noqa: E402
from slotfill.data.corpus import read_corpus  # noqa: E402
from slotfill.errors import SlotfillError  # noqa: E402
from slotfill.training.rundir import resolve_model  # noqa: E402

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start_server(model: Path, port: int, options: list[str], log) -> subprocess.Popen:
    url = f"http://{HOST}:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "slotfill", "serve", "--model", str(model),
                             "--port", str(port), *options],
                            stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            sys.exit(f"server exited with {proc.returncode}:\n{log.read()}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop_server(proc)
    sys.exit("server did not answer /health within 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bodies(texts: list[str]) -> list[bytes]:
    return [json.dumps({"text": text}).encode() for text in texts]


# ------------------------------------------------------------------ one client at a time

def latency_http_client(port: int, payloads: list[bytes], n: int) -> list[float]:
    """Seconds per request, one keep-alive connection of Python's http.client."""
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    times = []
    for i in range(n):
        start = time.perf_counter()
        conn.request("POST", "/predict", payloads[i % len(payloads)],
                     {"content-type": "application/json"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        times.append(time.perf_counter() - start)
    conn.close()
    return times


def latency_httpx(port: int, payloads: list[bytes], n: int) -> list[float]:
    """Seconds per request, one keep-alive connection of httpx.Client."""
    times = []
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=60) as client:
        for i in range(n):
            start = time.perf_counter()
            response = client.post("/predict", content=payloads[i % len(payloads)],
                                   headers={"content-type": "application/json"})
            response.raise_for_status()
            times.append(time.perf_counter() - start)
    return times


# ------------------------------------------------------------------ concurrent clients

class Tally:
    def __init__(self, requests: int) -> None:
        self.next = iter(range(requests))  # shared: each request is sent exactly once
        self.latencies: list[float] = []
        self.errors: list[str] = []


async def lean_client(port: int, payloads: list[bytes], tally: Tally) -> None:
    """One keep-alive connection sending requests one after another (reconnects after
    an error)."""
    reader = writer = None
    for i in tally.next:
        body = payloads[i % len(payloads)]
        request = (b"POST /predict HTTP/1.1\r\nhost: %s:%d\r\ncontent-type: application/json"
                   b"\r\ncontent-length: %d\r\n\r\n%s" % (HOST.encode(), port, len(body), body))
        start = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            answer = await reader.readexactly(length)
            if status != 200:
                tally.errors.append(f"HTTP {status}: {answer[:200]!r}")
        except Exception as exc:  # noqa: BLE001 - every failure counts as an error
            tally.errors.append(f"{type(exc).__name__}: {exc}")
            if writer is not None:
                writer.close()
            reader = writer = None
        tally.latencies.append(time.perf_counter() - start)
    if writer is not None:
        writer.close()


async def httpx_client(client: httpx.AsyncClient, payloads: list[bytes], tally: Tally) -> None:
    for i in tally.next:
        start = time.perf_counter()
        try:
            response = await client.post("/predict", content=payloads[i % len(payloads)],
                                         headers={"content-type": "application/json"})
            if response.status_code != 200:
                tally.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
        except Exception as exc:  # noqa: BLE001
            tally.errors.append(f"{type(exc).__name__}: {exc}")
        tally.latencies.append(time.perf_counter() - start)


async def load(port: int, payloads: list[bytes], requests: int, concurrency: int,
               client: str) -> tuple[Tally, float]:
    """`requests` requests from `concurrency` clients: their tally and the wall seconds."""
    tally = Tally(requests)
    if client == "lean":
        start = time.perf_counter()
        await asyncio.gather(*(lean_client(port, payloads, tally)
                               for _ in range(concurrency)))
        return tally, time.perf_counter() - start
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", limits=limits,
                                 timeout=60) as session:
        start = time.perf_counter()
        await asyncio.gather(*(httpx_client(session, payloads, tally)
                               for _ in range(concurrency)))
        return tally, time.perf_counter() - start


# ------------------------------------------------------------------ report

def percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def describe_model(model: Path) -> str:
    config_file = model.parent / "config.yaml"
    if not config_file.is_file():
        return str(model)
    m = (parse_yaml(config_file.read_text(encoding="utf-8")) or {}).get("model", {})
    kind = ("bidirectional " if m.get("bidirectional") else "") + str(m.get("type"))
    return (f"`{shown_path(model)}` ({kind}, hidden {m.get('hidden_size')}, embedding "
            f"{m.get('embedding_dim')}, head {m.get('head', 'softmax')})")


def write_results(path: Path, command: str, model: Path, options: list[str],
                  rows: list[tuple[str, str, str]], load: str) -> None:
    lines = [
        "# Serve load test", "",
        f"- command: `{command}`",
        f"- date: {date.today().isoformat()}",
        f"- machine: {describe()}; client and server on the same machine; load average "
        f"{load} before the run, {load_average()} after it",
        f"- torch {version('torch')}, fastapi {version('fastapi')}, uvicorn "
        f"{version('uvicorn')}, httpx {version('httpx')}",
        f"- model: {describe_model(model)}",
        f"- server: `slotfill serve` with {' '.join(options) or 'its default options'}",
        "- requests: one utterance each (`{\"text\": ...}`), from the bundled corpus's test "
        "split, over loopback with keep-alive; a warm-up round is not counted",
        "", "| figure | value | target |", "|---|---:|---:|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows], ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {path}")


def main() -> None:
    argv = sys.argv[1:]
    options = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="checkpoint or run directory (default: newest run)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-requests", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="200 requests, a smoke run")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/serve.md")
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    requests = 200 if args.quick else args.requests
    single = 50 if args.quick else args.latency_requests
    if requests < 1 or args.concurrency < 1 or single < 1:
        parser.error("--requests, --concurrency and --latency-requests must be at least 1")
    command, load_before = command_line(), load_average()

    try:
        model = resolve_model(args.model)
    except SlotfillError as exc:
        sys.exit(f"error: {exc.title}\n{exc.detail}")
    payloads = bodies([" ".join(e.tokens) for e in read_corpus("bundled")["test"]])
    port = free_port()
    rows: list[tuple[str, str, str]] = []

    def row(figure: str, value: str, target: str = "") -> None:
        rows.append((figure, value, target))
        print(f"{figure:>52}: {value:>9}  {target}", flush=True)

    errors: list[str] = []
    with tempfile.TemporaryFile("w+") as log:
        print(f"starting slotfill serve {model} on port {port}", flush=True)
        proc = start_server(model, port, options, log)
        try:
            for name, measure in (("http.client", latency_http_client),
                                  ("httpx.Client", latency_httpx)):
                measure(port, payloads, 20)  # warm-up
                ms = [1000 * s for s in measure(port, payloads, single)]
                row(f"one keep-alive client ({name}), p50 latency (ms)",
                    f"{percentile(ms, 50):.2f}", "<= 5 ms")
                row(f"one keep-alive client ({name}), p99 latency (ms)",
                    f"{percentile(ms, 99):.2f}")
            for client in ("lean", "httpx"):
                asyncio.run(load(port, payloads, 4 * args.concurrency, args.concurrency,
                                 client))  # warm-up
                cpu = cpu_seconds(proc.pid)
                tally, wall = asyncio.run(load(port, payloads, requests, args.concurrency,
                                               client))
                cpu = cpu_seconds(proc.pid) - cpu
                ms = sorted(1000 * s for s in tally.latencies)
                who = f"{args.concurrency} concurrent clients ({client})"
                row(f"{who}: requests", str(requests))
                row(f"{who}: errors", str(len(tally.errors)), "0")
                row(f"{who}: requests/s", f"{requests / wall:.1f}", ">= 800")
                row(f"{who}: p50 latency (ms)", f"{percentile(ms, 50):.1f}")
                row(f"{who}: p99 latency (ms)", f"{percentile(ms, 99):.1f}", "<= 50 ms")
                row(f"{who}: max latency (ms)", f"{ms[-1]:.1f}")
                row(f"{who}: server CPU per request (ms)", f"{1000 * cpu / requests:.2f}")
                errors += tally.errors
        finally:
            stop_server(proc)

    for message in sorted(set(errors))[:5]:
        print(f"error: {message}", file=sys.stderr)
    write_results(args.output, command, model, options, rows, load_before)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
