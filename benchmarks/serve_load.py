"""Load test of `slotfill serve`: requests/s and latency under concurrent clients.

    python benchmarks/serve_load.py [--model CKPT|RUN_DIR] [--requests 2000]
        [--concurrency 16] [--quick] [--output benchmarks/results/serve.md]

Starts `slotfill serve` as a subprocess on a free loopback port, waits for /health,
sends a warm-up round (not measured), then `--requests` POST /predict requests, each
{"text": one utterance of the bundled corpus's test split}, with `--concurrency`
requests in flight (httpx.AsyncClient; the client shares the machine with the server).
Prints and writes requests/s, p50/p99 latency and the error count (non-200 answers or
exceptions); exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
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

from benchmarks.machine import command_line, describe, shown_path  # noqa: E402
from slotfill.config import parse_yaml  # noqa: E402
from slotfill.data.corpus import read_corpus  # noqa: E402
from slotfill.errors import SlotfillError  # noqa: E402
from slotfill.training.rundir import resolve_model  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: Path, port: int, log) -> subprocess.Popen:
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "slotfill", "serve", "--model", str(model),
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=log)
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


async def load(url: str, texts: list[str], requests: int, concurrency: int):
    """`requests` requests from `concurrency` workers: (latencies in s, errors, wall s)."""
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(requests))

    async def worker(client: httpx.AsyncClient) -> None:
        for i in counter:  # a shared iterator: each request is sent exactly once
            start = time.perf_counter()
            try:
                response = await client.post(url, json={"text": texts[i % len(texts)]})
                if response.status_code != 200:
                    errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
            except Exception as exc:  # noqa: BLE001 - every failure counts as an error
                errors.append(f"{type(exc).__name__}: {exc}")
            latencies.append(time.perf_counter() - start)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return latencies, errors, time.perf_counter() - start


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


def write_results(path: Path, command: str, model: Path, rows: list[tuple[str, str]]) -> None:
    lines = [
        "# Serve load test", "",
        f"- command: `{command}`",
        f"- date: {date.today().isoformat()}",
        f"- machine: {describe()}; client and server on the same machine",
        f"- torch {version('torch')}, fastapi {version('fastapi')}, uvicorn "
        f"{version('uvicorn')}, httpx {version('httpx')}",
        f"- model: {describe_model(model)}",
        "- requests: one utterance each (`{\"text\": ...}`), from the bundled corpus's test "
        "split, over loopback with keep-alive; a warm-up round is not counted",
        "", "| figure | value |", "|---|---:|", *[f"| {a} | {b} |" for a, b in rows], ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="checkpoint or run directory (default: newest run)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="200 requests, a smoke run")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/serve.md")
    args = parser.parse_args()
    requests = 200 if args.quick else args.requests
    if requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be at least 1")
    command = command_line()

    try:
        model = resolve_model(args.model)
    except SlotfillError as exc:
        sys.exit(f"error: {exc.title}\n{exc.detail}")
    texts = [" ".join(example.tokens) for example in read_corpus("bundled")["test"]]
    port = free_port()
    url = f"http://127.0.0.1:{port}/predict"
    with tempfile.TemporaryFile("w+") as log:
        print(f"starting slotfill serve {model} on port {port}", flush=True)
        proc = start_server(model, port, log)
        try:
            asyncio.run(load(url, texts, 2 * args.concurrency, args.concurrency))  # warm-up
            latencies, errors, wall = asyncio.run(
                load(url, texts, requests, args.concurrency))
        finally:
            stop_server(proc)

    ms = sorted(1000 * s for s in latencies)
    rows = [("requests", str(requests)), ("concurrency", str(args.concurrency)),
            ("errors", str(len(errors))), ("wall time (s)", f"{wall:.2f}"),
            ("requests/s", f"{requests / wall:.1f}"),
            ("p50 latency (ms)", f"{percentile(ms, 50):.1f}"),
            ("p99 latency (ms)", f"{percentile(ms, 99):.1f}"),
            ("max latency (ms)", f"{ms[-1]:.1f}")]
    for name, value in rows:
        print(f"{name:>18}: {value}")
    for message in sorted(set(errors))[:5]:
        print(f"error: {message}", file=sys.stderr)
    write_results(args.output, command, model, rows)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
