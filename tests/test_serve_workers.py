"""`slotfill serve --workers N`: the sockets several processes share, and how the parent
starts, watches and stops them (slotfill/serving/workers.py; a real server with two
workers is in test_serve.py)."""

from __future__ import annotations

import sys

import pytest

from slotfill.errors import CheckpointError, SlotfillError
from slotfill.serving.workers import listening_sockets, run_workers

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="--workers needs Linux")


# targets run in spawned processes: module-level, so that they can be pickled
def fail_to_load(sock, ready) -> None:
    raise CheckpointError("Cannot read model.pt", "train a model first")


def exit_after_ready(sock, code, ready) -> None:
    ready()
    sys.exit(code)


def test_sockets_share_one_port_that_no_other_server_holds():
    sockets = listening_sockets("127.0.0.1", 0, 2)
    try:
        port = sockets[0].getsockname()[1]
        assert [s.getsockname()[1] for s in sockets] == [port, port]
        for sock in sockets:
            sock.listen()
        with pytest.raises(SlotfillError, match="Cannot listen on 127.0.0.1"):
            listening_sockets("127.0.0.1", port, 2)  # a second --workers server
        with pytest.raises(SlotfillError, match="Cannot listen on 127.0.0.1"):
            listening_sockets("127.0.0.1", port, 1)
    finally:
        for sock in sockets:
            sock.close()


def test_a_worker_that_cannot_start_is_the_servers_error():
    said = []
    with pytest.raises(CheckpointError) as caught:
        run_workers(fail_to_load, listening_sockets("127.0.0.1", 0, 2), (),
                    ready=lambda: said.append("ready"))
    assert (caught.value.title, caught.value.detail) == ("Cannot read model.pt",
                                                         "train a model first")
    assert said == []  # never said it was serving


def test_a_worker_that_exits_stops_the_server_with_an_error():
    said = []
    with pytest.raises(SlotfillError, match=r"Server worker \d exited with code 3"):
        run_workers(exit_after_ready, listening_sockets("127.0.0.1", 0, 2), (3,),
                    ready=lambda: said.append("ready"))
    assert said == ["ready"]  # both had started
