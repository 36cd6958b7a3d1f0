"""Load test of `slotfill serve`, several server configurations side by side: one
keep-alive client's latency, then requests/s, latency and CPU per request under
concurrent clients.

    python benchmarks/serve_load.py [--model CKPT|RUN_DIR] [--server OPTIONS]...
        [--baseline REF] [--profile] [--rounds 3] [--requests 2000] [--concurrency 16]
        [--quick] [--output benchmarks/results/serve.md]

Each `--server` is one configuration, `slotfill serve` options (default: its default
options, and `--workers 2`); `--baseline REF` adds, first, the server of an earlier
commit with its default options (its `slotfill` package, from `git archive`, run with
this environment's libraries), so that a change is measured against what it replaces
in the same run. Every other column's figures also show their ratio to the first
column's. Each round starts every configuration in turn as a subprocess on a free
loopback port, waits for /health, then, each after a warm-up round that is not counted,
with one utterance of the bundled corpus's test split per request:

1. one client, one request at a time on one keep-alive connection, with Python's
   `http.client` and with `httpx.Client` (`--latency-requests` each): p50 and p99;
2. `--requests` POST /predict requests with `--concurrency` in flight, each client on
   its own keep-alive connection, from a lean asyncio HTTP/1.1 client (a load generator
   should cost little next to the server it measures; both share the machine), and
   the same with `httpx.AsyncClient` (a client people use);
3. overload: `--requests` requests (at least 20 a client) from 256 lean clients, four
   times as many as the default `--max-queue` lets wait: the share answered 503 (each client
   sends its next request at once, without waiting for Retry-After; a 503 is not an
   error there) and the latency of the requests accepted (on open connections: a
   client's first request, which also waits for its connection, is not counted).

Reports, per configuration, the median over the rounds of: requests/s, p50/p99/max
latency, errors (non-200 answers or exceptions; their sum over the rounds), the CPU time
per request of the server (all its processes; under the lean load also split between
the event loops' threads and the others, which run the forward passes) and of the load
client; then each target met or missed, by how much. `--profile` adds, in the first
round, one more lean load per configuration under py-spy (benchmarks/serve_profile.py):
where the server's CPU per request goes. Exits 1 if any request failed.

Client and server share the machine's cores, so nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from importlib.metadata import version
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
OVERLOAD = 256  # clients of the overload load: four times serve's default --max-queue (64)
sys.path.insert(0, str(ROOT))

from benchmarks import serve_profile  # noqa: E402
from benchmarks.serve_clients import (HOST, Tally, bodies, latency_http_client,  # noqa: E402
                                      latency_httpx, load)
from benchmarks.machine import command_line, describe, load_average, shown_path  # noqa: E402
from slotfill.config import parse_yaml  # noqa: E402
from slotfill.data.corpus import read_corpus  # noqa: E402
from slotfill.errors import SlotfillError  # noqa: E402
from slotfill.training.rundir import resolve_model  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """One configuration: `slotfill serve OPTIONS`, from `code` (a directory holding
    another commit's slotfill package) or from this checkout."""

    label: str  # its column's heading
    options: list[str]
    code: Path | None = None
    runs: list[dict[str, float]] = field(default_factory=list)  # figures, one per round
    profile: dict[str, float] = field(default_factory=dict)  # group -> share of samples


def start_server(server: Server, model: Path, port: int, log) -> subprocess.Popen:
    url = f"http://{HOST}:{port}"
    env = dict(os.environ)
    if server.code is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(server.code), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen([sys.executable, "-m", "slotfill", "serve", "--model",
                             str(model.resolve()), "--port", str(port), *server.options],
                            cwd=server.code, env=env, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            sys.exit(f"server exited with {proc.returncode}:\n{log.read()}")
        log.seek(0)
        try:  # ready once it says so (with --workers: once every worker listens)
            if "serving " in log.read() and httpx.get(f"{url}/health",
                                                      timeout=2).status_code == 200:
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


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User + system CPU seconds so far of a process and its descendants (Linux; a server
    with --workers is several processes): of their main threads, which run the event
    loops, and of their other threads, which run the forward passes."""
    main = other = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    with contextlib.suppress(OSError):  # a process that has just exited counts nothing
        for task in Path(f"/proc/{pid}/task").iterdir():
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / tick
            if task.name == str(pid):
                main += seconds
            else:
                other += seconds
            for child in (task / "children").read_text().split():
                child_main, child_other = cpu_seconds(int(child))
                main, other = main + child_main, other + child_other
    return main, other


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


RATIO_FIGURES = ("requests/s", "latency", "CPU per request")  # shown with a ratio


def cell(figure: str, samples: list[float], first: float | None) -> str:
    """One table cell: the median of the rounds' samples (errors: their sum), with its
    ratio to the first column's median."""
    if figure.endswith("errors"):
        return str(int(sum(samples)))
    median = statistics.median(samples)
    text = f"{median:.2f}" if "CPU" in figure or "one keep" in figure else f"{median:.1f}"
    if first and any(word in figure for word in RATIO_FIGURES):
        text += f" ({median / first:.2f}x)"
    return text


def medians(server: Server) -> dict[str, float]:
    return {figure: statistics.median(run[figure] for run in server.runs)
            for figure in server.runs[0]}


def targets(concurrency: int) -> list[tuple[str, str, float]]:
    """The figures with a target (issue 18): figure, ">=" or "<=", threshold."""
    lean, other = (f"{concurrency} concurrent clients ({c})" for c in ("lean", "httpx"))
    return [("one keep-alive client (http.client), p50 latency (ms)", "<=", 5.0),
            (f"{lean}: requests/s", ">=", 800.0), (f"{lean}: p99 latency (ms)", "<=", 50.0),
            (f"{lean}: errors", "<=", 0.0), (f"{other}: errors", "<=", 0.0),
            (f"{OVERLOAD} concurrent clients (lean, overload): p99 latency of accepted "
             "requests (ms)", "<=", 100.0),
            (f"{OVERLOAD} concurrent clients (lean, overload): errors", "<=", 0.0)]


def verdict(value: float, kind: str, threshold: float) -> str:
    """Whether `value` meets `kind threshold`, and by how much."""
    if threshold == 0:
        return "met" if value == 0 else f"missed: {value:g}"
    margin = value / threshold - 1 if kind == ">=" else 1 - value / threshold
    met = margin >= 0
    words = ("above", "short") if kind == ">=" else ("under", "over")
    return f"{'met' if met else 'missed'}: {value:.1f}, {abs(margin):.0%} " \
           f"{words[0] if met else words[1]}"


def write_results(path: Path, header: list[str], servers: list[Server],
                  concurrency: int) -> None:
    labels = [server.label for server in servers]
    columns = f"| {' | '.join(labels)} |"
    rule = f"|---|{'---:|' * len(servers)}"
    lines = ["# Serve load test", "", *header, "", f"| figure {columns} target |",
             rule + "---:|"]
    goals = {figure: f"{kind} {threshold:g}" for figure, kind, threshold in targets(concurrency)}
    for figure in servers[0].runs[0]:
        first = medians(servers[0])[figure]
        values = [cell(figure, [run[figure] for run in server.runs], first if i else None)
                  for i, server in enumerate(servers)]
        lines.append(f"| {figure} | {' | '.join(values)} | {goals.get(figure, '')} |")
    lines += ["", "Targets (issue 18; the overload rows issue 29):", "", f"| target {columns}", rule]
    for figure, kind, threshold in targets(concurrency):
        values = [verdict(medians(server)[figure], kind, threshold) for server in servers]
        lines.append(f"| {figure} {kind} {threshold:g} | {' | '.join(values)} |")
    if servers[0].profile:
        lines += ["", f"Where the server's CPU goes under the lean load (py-spy, one more run "
                  f"of the same requests in round 1; time in C counts for the Python code "
                  f"that called it): ms of CPU per request (share of the samples):", "",
                  f"| group {columns}", rule]
        for group in [*serve_profile.GROUPS, "total"]:
            values = [f"{s.profile[group] * s.profile['total']:.3f} ({s.profile[group]:.0%})"
                      if group != "total" else f"{s.profile['total']:.3f}" for s in servers]
            lines.append(f"| {group} | {' | '.join(values)} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {path}")


# ------------------------------------------------------------------ runs

def lean_cpu(port: int, proc: subprocess.Popen, payloads: list[bytes], requests: int,
             concurrency: int, client: str) -> tuple[Tally, float, tuple[float, float]]:
    """One load run: its tally, wall seconds, and the server's CPU seconds it took (main
    threads, other threads)."""
    before = cpu_seconds(proc.pid)
    tally, wall = asyncio.run(load(port, payloads, requests, concurrency, client))
    after = cpu_seconds(proc.pid)
    return tally, wall, (after[0] - before[0], after[1] - before[1])


def measure(port: int, proc: subprocess.Popen, payloads: list[bytes], single: int,
            requests: int, concurrency: int) -> tuple[dict[str, float], list[str]]:
    """Every figure of one running server, and the messages of its failed requests."""
    figures: dict[str, float] = {}
    for name, client in (("http.client", latency_http_client), ("httpx.Client", latency_httpx)):
        client(port, payloads, 20)  # warm-up
        ms = [1000 * s for s in client(port, payloads, single)]
        who = f"one keep-alive client ({name})"
        figures[f"{who}, p50 latency (ms)"] = percentile(ms, 50)
        figures[f"{who}, p99 latency (ms)"] = percentile(ms, 99)
    errors: list[str] = []
    for client in ("lean", "httpx"):
        asyncio.run(load(port, payloads, 4 * concurrency, concurrency, client))  # warm-up
        own = time.process_time()
        tally, wall, (loops, others) = lean_cpu(port, proc, payloads, requests, concurrency,
                                                client)
        own = time.process_time() - own
        ms = sorted(1000 * s for s in tally.latencies)
        who = f"{concurrency} concurrent clients ({client})"
        figures[f"{who}: errors"] = tally.failed
        figures[f"{who}: requests/s"] = requests / wall
        figures[f"{who}: p50 latency (ms)"] = percentile(ms, 50)
        figures[f"{who}: p99 latency (ms)"] = percentile(ms, 99)
        figures[f"{who}: max latency (ms)"] = ms[-1]
        figures[f"{who}: server CPU per request (ms)"] = 1000 * (loops + others) / requests
        if client == "lean":
            figures[f"{who}: of which event loops' threads (ms)"] = 1000 * loops / requests
            figures[f"{who}: of which forward passes' threads (ms)"] = 1000 * others / requests
        figures[f"{who}: client CPU per request (ms)"] = 1000 * own / requests
        errors += tally.errors + ["HTTP 503"] * len(tally.shed)
    # overload: more clients than --max-queue lets wait; 503s are the server shedding load
    # (not errors here)
    many = max(requests, 20 * OVERLOAD)  # 20 a client: their connections' opening is past
    tally, wall = asyncio.run(load(port, payloads, many, OVERLOAD, "lean"))
    who = f"{OVERLOAD} concurrent clients (lean, overload)"
    figures[f"{who}: errors"] = len(tally.errors)
    figures[f"{who}: share answered 503 (%)"] = 100 * len(tally.shed) / many
    figures[f"{who}: accepted requests/s"] = tally.answered / wall
    figures[f"{who}: p99 latency of accepted requests (ms)"] = percentile(
        sorted(1000 * s for s in tally.accepted), 99)
    errors += tally.errors
    return figures, errors


def profile(port: int, proc: subprocess.Popen, payloads: list[bytes], requests: int,
            concurrency: int) -> dict[str, float]:
    """Each group's share of the server's samples under one more lean load, and the
    load's server CPU per request in ms ("total")."""
    with serve_profile.recording(proc.pid) as shares:
        _, _, cpu = lean_cpu(port, proc, payloads, requests, concurrency, "lean")
    return {**shares, "total": 1000 * sum(cpu) / requests}


def checkout(ref: str, into: Path) -> str:
    """The slotfill package of commit `ref`, unpacked under `into`; its short hash."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "--verify", f"{ref}^{{commit}}"],
                             cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
        tar = subprocess.run(["git", "archive", "--format=tar", sha, "slotfill"], cwd=ROOT,
                             check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        problem = getattr(exc, "stderr", None) or exc
        sys.exit(f"error: --baseline {ref}: not a commit of this repository ({problem!s:.200})")
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(into, filter="data")
    return sha


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="checkpoint or run directory (default: newest run)")
    parser.add_argument("--server", action="append", metavar="OPTIONS",
                        help="`slotfill serve` options of one configuration, e.g. "
                             "\"--workers 2\" (repeat for more; default: \"\" and "
                             "\"--workers 2\")")
    parser.add_argument("--baseline", metavar="REF",
                        help="also measure this commit's server (default options), first")
    parser.add_argument("--profile", action="store_true",
                        help="where each server's CPU goes, sampled by py-spy")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-requests", type=int, default=500)
    parser.add_argument("--quick", action="store_true",
                        help="one round of 200 requests, a smoke run")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/serve.md")
    args = parser.parse_args()
    requests = 200 if args.quick else args.requests
    single = 50 if args.quick else args.latency_requests
    rounds = 1 if args.quick else args.rounds
    if min(requests, args.concurrency, single, rounds) < 1:
        parser.error("--requests, --concurrency, --latency-requests and --rounds must be "
                     "at least 1")
    if args.profile and not serve_profile.available():
        parser.error("--profile needs py-spy on PATH: pip install py-spy")
    command, load_before = command_line(), load_average()
    try:
        model = resolve_model(args.model)
    except SlotfillError as exc:
        sys.exit(f"error: {exc.title}\n{exc.detail}")
    payloads = bodies([" ".join(e.tokens) for e in read_corpus("bundled")["test"]])

    with tempfile.TemporaryDirectory() as baseline_code:
        servers = [Server(f"`{options}`" if options else "default options",
                          shlex.split(options)) for options in args.server or ["", "--workers 2"]]
        if args.baseline:
            sha = checkout(args.baseline, Path(baseline_code))
            name = sha if args.baseline.startswith(sha) else f"{args.baseline} = {sha}"
            servers.insert(0, Server(f"before: `{name}`, default options", [],
                                     Path(baseline_code)))
        errors = run_rounds(servers, model, payloads, rounds, single, requests,
                            args.concurrency, args.profile)

    for message in sorted(set(errors))[:5]:
        print(f"error: {message}", file=sys.stderr)
    shown = "; ".join(f"{s.label}: `{shlex.join(['slotfill', 'serve', *s.options])}`"
                      for s in servers)
    header = [
        f"- command: `{command}`",
        f"- date: {date.today().isoformat()}",
        f"- machine: {describe()}; client and server on the same machine; load average "
        f"{load_before} before the run, {load_average()} after it",
        f"- torch {version('torch')}, fastapi {version('fastapi')}, uvicorn "
        f"{version('uvicorn')}, httpx {version('httpx')}",
        f"- model: {describe_model(model)}",
        f"- servers: {shown}" + ("; `before` is that commit's slotfill package, run with the "
                                 "same libraries" if args.baseline else ""),
        f"- {rounds} round(s), each starting every server in turn; a figure is the median over "
        "the rounds (errors: their sum); in brackets, its ratio to the first column's",
        "- requests: one utterance each (`{\"text\": ...}`), from the bundled corpus's test "
        "split, over loopback with keep-alive; a warm-up round is not counted"]
    write_results(args.output, header, servers, args.concurrency)
    sys.exit(1 if errors else 0)


def run_rounds(servers: list[Server], model: Path, payloads: list[bytes], rounds: int,
               single: int, requests: int, concurrency: int, profiled: bool) -> list[str]:
    """Every round of every server (figures in server.runs, profile in server.profile);
    the messages of the failed requests."""
    errors: list[str] = []
    for round_ in range(1, rounds + 1):
        for server in servers:
            port = free_port()
            print(f"round {round_}: {server.label} on port {port}", flush=True)
            with tempfile.TemporaryFile("w+") as log:
                proc = start_server(server, model, port, log)
                try:
                    figures, failed = measure(port, proc, payloads, single, requests,
                                              concurrency)
                    if profiled and round_ == 1:
                        server.profile = profile(port, proc, payloads, requests, concurrency)
                finally:
                    stop_server(proc)
            for figure, value in figures.items():
                print(f"{figure:>66}: {value:9.2f}", flush=True)
            server.runs.append(figures)
            errors += failed
    return errors


if __name__ == "__main__":
    main()
