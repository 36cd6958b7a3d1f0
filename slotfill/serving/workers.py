"""The listening sockets of `slotfill serve`, and `--workers N`: N server processes on
one port.

One server process keeps about one core busy under load however many it has: its event
loop and its forward passes mostly take turns (the passes wait for the requests, the
answers for the passes). N processes, each with its own socket bound to the port with
SO_REUSEPORT, let the kernel spread connections over them, so N cores work at once; each
process has its own model, batcher and event loop. Linux only: elsewhere SO_REUSEPORT
does not spread connections (or does not exist).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import signal
import socket
import sys
from collections.abc import Callable

from slotfill.errors import SlotfillError, UsageError


def bind(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to host:port, or a SlotfillError.

    Its connections send without Nagle's delay (TCP_NODELAY). uvicorn writes a response's
    headers and body in two small segments; with Nagle on, the second waits for the ACK
    of the first, which a keep-alive client delays by up to 40 ms. asyncio sets
    TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and a socket made with
    proto 0 is not, so the socket takes getaddrinfo's proto and sets the option itself
    (accepted connections inherit it on Linux)."""
    sock = None
    try:
        family, kind, proto = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][:3]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        return sock
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise SlotfillError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}",
                            "choose another --port (or --host)") from None


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets bound to host:port, one per server process (not listening yet:
    each process listens once its model is loaded, so that no connection waits for a
    process that is still starting)."""
    if count == 1:
        return [bind(host, port)]
    if not sys.platform.startswith("linux"):
        raise UsageError("--workers needs Linux",
                         "only Linux's SO_REUSEPORT spreads connections over several "
                         "processes; elsewhere run one server per port behind a proxy")
    # Without SO_REUSEPORT first: a port that any process holds, including another
    # `slotfill serve --workers`, is refused here rather than silently shared.
    probe = bind(host, port)
    port = probe.getsockname()[1]  # the port the OS chose for --port 0
    probe.close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sockets.append(bind(host, port, reuse_port=True))
    except SlotfillError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


Target = Callable[..., None]  # target(sock, *settings, ready=callback): serves until stopped


def run_workers(target: Target, sockets: list[socket.socket], settings: tuple,
                ready: Callable[[], None]) -> None:
    """One process per socket running `target(sock, *settings, ready=...)`, which calls
    its `ready()` once it accepts connections; `ready()` here once every process has.
    Returns when all have stopped: SIGINT or SIGTERM here stops them all (SIGTERM each,
    which uvicorn answers by finishing what it is doing). A process that fails to start,
    or exits on its own, stops the others; its SlotfillError (or its exit code) is
    raised here."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch
    processes: list[multiprocessing.process.BaseProcess] = []
    stopping = False

    def stop(signum=None, frame=None) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.is_alive():
                process.terminate()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        pipes = []
        for sock in sockets:
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=_worker, args=(target, sock, settings, send))
            process.start()
            send.close()  # the child's end: EOF here once the child has exited
            sock.close()  # the child has its own copy
            processes.append(process)
            pipes.append(receive)
        for i, pipe in enumerate(pipes, 1):
            try:
                failure = pipe.recv()  # None once the process is ready
            except EOFError:  # it exited before it was ready
                failure = (SlotfillError, f"Server worker {i} exited while starting",
                           "see the messages above")
            if failure is not None and not stopping:
                stop()
                kind, title, detail = failure
                raise kind(title, detail)
        if not stopping:
            ready()
        ended = multiprocessing.connection.wait([p.sentinel for p in processes])
        if not stopping:
            # its sentinel closes as it exits, a moment before its exit code is known
            i, died = next((i, p) for i, p in enumerate(processes, 1) if p.sentinel in ended)
            died.join()
            stop()
            raise SlotfillError(f"Server worker {i} exited with code {died.exitcode}",
                                "the other workers were stopped; see the messages above")
    finally:
        for process in processes:
            process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _worker(target: Target, sock: socket.socket, settings: tuple,
            pipe: multiprocessing.connection.Connection) -> None:
    """A worker process: runs `target`, telling the parent through `pipe` when it is
    ready (None) or why it could not start (the SlotfillError's class, title, detail)."""
    try:
        target(sock, *settings, ready=lambda: pipe.send(None))
    except SlotfillError as exc:
        pipe.send((type(exc), exc.title, exc.detail))
    except KeyboardInterrupt:  # Ctrl-C while it was still loading: no traceback
        pass

