"""The clients of benchmarks/serve_load.py: one keep-alive client at a time (Python's
http.client, httpx.Client), and concurrent clients (a lean asyncio HTTP/1.1 client, or
httpx.AsyncClient), each sending POST /predict requests to a server on loopback."""

from __future__ import annotations

import asyncio
import http.client
import json
import time

import httpx

HOST = "127.0.0.1"


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
        self.accepted: list[float] = []  # latencies of 200 answers on an open connection
        self.answered = 0  # 200 answers, also those that opened their connection
        self.shed: list[float] = []  # latencies of the 503 answers (the server is busy)
        self.errors: list[str] = []  # every other failure

    @property
    def failed(self) -> int:
        """Requests not answered with 200 (a 503 counts, unless shedding is measured)."""
        return len(self.errors) + len(self.shed)


async def lean_client(port: int, payloads: list[bytes], tally: Tally) -> None:
    """One keep-alive connection sending requests one after another (reconnects after
    an error)."""
    reader = writer = None
    for i in tally.next:
        body = payloads[i % len(payloads)]
        request = (b"POST /predict HTTP/1.1\r\nhost: %s:%d\r\ncontent-type: application/json"
                   b"\r\ncontent-length: %d\r\n\r\n%s" % (HOST.encode(), port, len(body), body))
        start = time.perf_counter()
        opened = writer is None  # this request waits for a connection too
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            answer = await reader.readexactly(length)
            if status == 200:
                tally.answered += 1
                if not opened:
                    tally.accepted.append(time.perf_counter() - start)
            elif status == 503:
                tally.shed.append(time.perf_counter() - start)
            else:
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
