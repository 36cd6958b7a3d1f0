"""`slotfill serve`: the HTTP API in-process (TestClient), and one real server process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
import httpx  # noqa: E402

with warnings.catch_warnings():  # newer Starlette prefers httpx2 but still works with httpx
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from conftest import CONFIGS, tiny_overrides  # noqa: E402

from slotfill.config import load_config  # noqa: E402
from slotfill.serving.predict import Predictor  # noqa: E402
from slotfill.serving.serve import Limits, create_app  # noqa: E402
from slotfill.training.run import train  # noqa: E402

LIMITS = Limits(max_utterances=3, max_tokens=8, max_body_bytes=2000)
TEXT = "flights from Boston to Denver on Nov 2nd"


@pytest.fixture(scope="module")
def predictor(trained_run) -> Predictor:
    return Predictor(trained_run / "best.pt")


@pytest.fixture(scope="module")
def client(predictor) -> TestClient:
    return TestClient(create_app(predictor, LIMITS, model_name="tiny.pt"))


def post(client: TestClient, body, **kwargs) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/predict", content=content,
                       headers={"content-type": "application/json"}, **kwargs)


def assert_error(response: httpx.Response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    message = response.json()["error"]
    assert set(response.json()) == {"error"} and "\n" not in message
    assert "Traceback" not in message
    for fragment in fragments:
        assert fragment in message


# ---------------------------------------------------------------- answers

def test_single_text_is_what_predict_json_prints(client, predictor):
    response = post(client, {"text": TEXT})
    assert response.status_code == 200
    assert response.json() == predictor.predict([TEXT])[0]
    assert set(response.json()) >= {"text", "tokens", "tags", "slots"}


def test_list_of_texts(client, predictor):
    texts = [TEXT, "to Tokyo", ""]  # an empty utterance gets no tokens and no tags
    response = post(client, {"texts": texts})
    assert response.status_code == 200
    assert response.json() == predictor.predict(texts)
    assert response.json()[2]["tags"] == []
    assert post(client, {"texts": []}).json() == []


def test_non_ascii_text_comes_back_unchanged(client):
    text = "vols de Zürich à São Paulo"
    assert post(client, {"text": text}).json()["text"] == text


def test_health(client, predictor):
    response = client.get("/health")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok" and health["model"] == "tiny.pt"
    assert health["limits"] == {"max_utterances": 3, "max_tokens": 8, "max_body_bytes": 2000,
                                "max_n_best": 20}
    tags = health["labels"]["tags"]
    assert "O" in tags and all(t == "O" or t[:2] in ("B-", "I-") for t in tags)
    slots = health["labels"]["slots"]
    assert slots and len(set(slots)) == len(slots)
    assert {t[2:] for t in tags if t != "O"} == set(slots)
    assert health["labels"]["intents"] is None  # this model predicts no intents


def test_intent_model(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("intent-run")
    train(load_config(CONFIGS / "bilstm.yaml", tiny_overrides() + ["model.intent=true"]),
          run_dir)
    predictor = Predictor(run_dir / "best.pt")
    client = TestClient(create_app(predictor, LIMITS))
    assert client.get("/health").json()["labels"]["intents"] == predictor.vocabs.intents.itos
    result = post(client, {"text": TEXT}).json()
    assert result == predictor.predict([TEXT])[0] and "intent" in result


# ---------------------------------------------------------------- limits

def test_too_many_utterances(client):
    assert_error(post(client, {"texts": ["to boston"] * 4}), 422,
                 "too many utterances: 4", "limit is 3")


def test_too_many_tokens(client):
    long = "from boston to denver on nov 2nd , in the morning"  # 10 tokens: "," dropped
    assert_error(post(client, {"text": long}), 422, '"text" has 10 tokens', "limit is 8")
    assert_error(post(client, {"texts": ["to boston", long]}), 422,
                 'utterance 1 of "texts" has 10 tokens', "limit is 8")
    assert post(client, {"text": "a b c d e f g h"}).status_code == 200  # exactly 8


def test_body_too_large_by_content_length(client):
    body = json.dumps({"text": "to boston " * 300}).encode()
    assert_error(post(client, body), 413, f"{len(body)} bytes is too large",
                 "limit is 2000 bytes")


def test_body_too_large_without_content_length(client):
    def chunks():  # a streamed (chunked) body declares no size
        yield b'{"text": "'
        for _ in range(300):
            yield b"to boston "
        yield b'"}'

    response = client.post("/predict", content=chunks())
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "too large", "limit is 2000 bytes")


def test_body_larger_than_its_content_length_says(client):
    body = json.dumps({"text": "to boston " * 300}).encode()
    response = client.post("/predict", content=body, headers={"content-length": "10"})
    assert response.request.headers["content-length"] == "10"
    assert_error(response, 413, "too large", "limit is 2000 bytes")


def test_small_streamed_body_is_fine(client):
    response = client.post("/predict", content=iter([b'{"text": ', b'"to boston"}']))
    assert response.status_code == 200 and response.json()["tokens"] == ["to", "boston"]


# ---------------------------------------------------------------- bad requests

@pytest.mark.parametrize("body", [b"", b"{", b"{'text': 'x'}", b'{"text": "x"} extra',
                                  b"\xff\xfe\x00", b'{"text": "to \xff"}'])
def test_malformed_json(client, body):
    assert_error(post(client, body), 400, "request body is not valid JSON")


def test_too_deeply_nested_json(predictor):
    client = TestClient(create_app(predictor, Limits(max_body_bytes=1 << 20)))
    body = b'{"texts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert_error(post(client, body), 400, "nested too deeply")


@pytest.mark.parametrize("payload, fragment", [
    (["to boston"], "must be a JSON object"),
    ("to boston", "must be a JSON object"),
    ({}, 'exactly one of "text" and "texts"'),
    ({"text": "a", "texts": ["b"]}, 'exactly one of "text" and "texts"'),
    ({"txt": "a"}, 'unknown field(s) "txt"'),
    ({"text": "a", "lang": "en"}, 'unknown field(s) "lang"'),
    ({"text": 3}, '"text" must be a string, not a number'),
    ({"text": None}, '"text" must be a string, not null'),
    ({"text": ["a"]}, '"text" must be a string, not a list'),
    ({"texts": "a"}, '"texts" must be a list of strings, not a string'),
    ({"texts": ["a", 1]}, "item 1 is a number"),
    ({"texts": [["a"]]}, "item 0 is a list"),
])
def test_wrong_types(client, payload, fragment):
    assert_error(post(client, payload), 422, fragment)


def test_unknown_route_and_method(client):
    assert_error(client.get("/nope"), 404, "Not Found", "/nope", "POST /predict")
    response = client.get("/predict")
    assert_error(response, 405, "Method Not Allowed", "GET /predict")
    assert "POST" in response.headers["allow"]


# ---------------------------------------------------------------- demo page and docs

def test_demo_page_is_self_contained_and_calls_predict(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<form" in page and 'fetch("/predict"' in page and 'fetch("/health"' in page
    for external in ("http://", "https://", "//cdn", "<link", "src="):
        assert external not in page, external  # no external assets: works offline
    assert "confidence" in page and "intent_confidence" in page


def test_docs_and_openapi_are_served(client):
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/predict", "/health"} <= set(schema["paths"])
    assert "/" not in schema["paths"]  # the demo page is not part of the API
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert post(client, body["example"]).status_code == 200  # "try it out" works


def test_listening_socket_sends_without_nagle_delay():
    from slotfill.serving.workers import bind

    server = bind("127.0.0.1", 0)
    try:
        assert server.proto == socket.IPPROTO_TCP  # so that asyncio sets TCP_NODELAY too
        server.listen()
        with socket.create_connection(server.getsockname()[:2]):
            conn, _ = server.accept()
            with conn:  # what uvicorn writes responses on
                assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        server.close()


def test_busy_port_is_a_clear_error():
    from slotfill.errors import SlotfillError
    from slotfill.serving.workers import bind

    taken = bind("127.0.0.1", 0)
    try:
        taken.listen()
        with pytest.raises(SlotfillError, match="Cannot listen on 127.0.0.1"):
            bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def test_a_bug_before_tagging_is_a_json_500_too(predictor, monkeypatch, capsys):
    def broken(text):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(predictor, "tokenize", broken)
    response = post(TestClient(create_app(predictor, LIMITS)), {"text": "to boston"})
    assert_error(response, 500, "internal error")
    assert "secret" not in response.text
    assert "secret internals" in capsys.readouterr().err


def test_client_gone_while_sending_is_a_clear_400():
    from slotfill.serving.serve import ApiError, read_body

    async def gone():
        return {"type": "http.disconnect"}

    with pytest.raises(ApiError, match="client disconnected") as caught:
        asyncio.run(read_body({"headers": [(b"content-length", b"20")]}, gone, 100))
    assert caught.value.status == 400


def test_model_failure_is_a_500_without_traceback(predictor, monkeypatch, capsys):
    def broken(texts, tokenized=None):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(predictor, "predict", broken)
    client = TestClient(create_app(predictor, LIMITS))
    response = post(client, {"text": "to boston"})
    assert_error(response, 500, "internal error")
    assert "secret" not in response.text
    assert "secret internals" in capsys.readouterr().err  # logged on the server side


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="max_tokens"):
        Limits(max_tokens=0)


# ---------------------------------------------------------------- a real server

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(model, log: Path, *options: str):
    """`slotfill serve --model MODEL OPTIONS...` on a free port, its stderr in `log`:
    yields its URL and process once it says it is serving; stopped with SIGTERM after
    (and then it must exit by itself: 0, or -SIGTERM as uvicorn re-raises the signal
    once it has shut down, without a traceback)."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    with open(log, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "slotfill", "serve", "--model",
                                 str(model), "--port", str(port), *options], env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while "serving " not in log.read_text():  # said once every worker listens
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready in 60 s:\n{log.read_text()}")
            time.sleep(0.1)
        yield url, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, -signal.SIGTERM), log.read_text()
    assert "Traceback" not in log.read_text()


def test_real_server_end_to_end(trained_run, predictor, tmp_path):
    with running_server(trained_run, tmp_path / "stderr.txt") as (url, _):
        health = httpx.get(f"{url}/health", timeout=10)
        assert health.status_code == 200
        assert health.json()["model"] == str(trained_run / "best.pt")
        response = httpx.post(f"{url}/predict", json={"texts": [TEXT, "to Tokyo"]}, timeout=30)
        assert response.status_code == 200
        assert response.json() == predictor.predict([TEXT, "to Tokyo"])
        assert f"serving {trained_run / 'best.pt'} on {url}" \
            in (tmp_path / "stderr.txt").read_text()


def listeners(port: int) -> int:
    """Sockets listening on 127.0.0.1:port (Linux's /proc/net/tcp)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1] == f"0100007F:{port:04X}"
               and row.split()[3] == "0A")  # 0A: LISTEN


def descendants(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in map(int, (task / "children").read_text().split()):
            found |= {child} | descendants(child)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="--workers needs Linux")
def test_real_server_with_two_workers(trained_run, predictor, tmp_path):
    with running_server(trained_run, tmp_path / "stderr.txt", "--workers", "2") as (url, proc):
        port = int(url.rsplit(":", 1)[1])
        assert listeners(port) == 2  # one socket per worker, the kernel spreads connections
        texts = [TEXT, "to Tokyo", "arrive Taipei on Nov 2nd", ""] * 3
        clients = [httpx.Client(base_url=url, timeout=30) for _ in range(6)]  # 6 connections
        for i, text in enumerate(texts):
            response = clients[i % 6].post("/predict", json={"text": text})
            assert response.status_code == 200
            assert response.json() == predictor.predict([text])[0]
        for client in clients:
            client.close()
        assert "with 2 worker processes" in (tmp_path / "stderr.txt").read_text()
        workers = {pid for pid in descendants(proc.pid)
                   if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()}
        assert len(workers) == 2
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)  # SIGTERM stopped all



def test_sigterm_answers_the_accepted_requests_before_exiting(trained_run, tmp_path):
    """Requests the server has accepted when SIGTERM arrives (pending: being received,
    queued or being tagged) are all answered with 200 before it exits. Connections it
    had not yet taken up may be refused or reset (uvicorn closes its listening socket
    and the connections without a request); nothing else happens to any request."""
    import concurrent.futures

    heavy = {"texts": ["to boston " * 250] * 64}  # 32,000 tokens: a pass of tens of ms
    with running_server(trained_run, tmp_path / "stderr.txt") as (url, proc):
        ready = httpx.get(f"{url}/ready", timeout=10)
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert ready.json()["max_queue"] == 64

        def ask(_):
            try:
                response = httpx.post(f"{url}/predict", json=heavy, timeout=60)
            except httpx.TransportError:
                return "not taken up", time.monotonic()
            return response.status_code, time.monotonic()

        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            answers = pool.map(ask, range(12))
            deadline, pending = time.monotonic() + 20, 0
            while pending < 4 and time.monotonic() < deadline:
                pending = httpx.get(f"{url}/ready", timeout=20).json()["pending"]
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            answers = list(answers)
        proc.wait(timeout=60)
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {200, "not taken up"}, statuses
    assert pending >= 4 and statuses.count(200) >= pending, (pending, statuses)
    assert any(status == 200 and at > signalled for status, at in answers)  # drained
