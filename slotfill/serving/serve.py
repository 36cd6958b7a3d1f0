"""`slotfill serve`: a JSON HTTP API over a Predictor, on FastAPI + uvicorn.

    POST /predict  {"text": "..."} -> one result (what `slotfill predict --json` prints)
                   {"texts": ["...", ...]} -> a list of results
                   either with "n_best": K -> each result with its K most probable
                   tag sequences (`slotfill predict --json --n-best K`)
    GET  /health   {"status": "ok", "model", "labels": {slots, tags, intents}, "limits"}
    GET  /ready    200 {"status": "ready", "pending", "max_queue"} while the server takes
                   requests, 503 {"status": "saturated", ...} while it refuses them
    GET  /         a demo page (demo.html) that calls /predict
    GET  /docs     the OpenAPI docs (FastAPI's), /openapi.json their schema

Every error of the API is a 4xx (or 500) response `{"error": "<one line>"}`, never a
traceback. The model is loaded once; requests that arrive together are tagged in one
forward pass in a worker thread (batcher.py). Load is shed, not queued without bound:
while `max_queue` requests are pending, POST /predict answers 503 with Retry-After at
once, and /ready says so, for a load balancer to send elsewhere. A request once accepted
is always answered; on SIGTERM uvicorn stops accepting and waits for the pending ones.
POST /predict is answered in front of FastAPI's middleware and router, which cost more
CPU per request than the rest of its handling in Python; every other path is FastAPI's.
`--workers N` runs N such servers (workers.py)."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from slotfill.data.bio import slot_types
from slotfill.data.tokenize import Token
from slotfill.errors import UsageError
from slotfill.loop.retrain import LabelStudioSettings
from slotfill.loop.tasks import model_version
from slotfill.serving.batcher import Batcher
from slotfill.serving.predict import Predictor
from slotfill.serving.workers import listening_sockets, run_workers
from slotfill.threads import usable_cores

Message = dict  # an ASGI message
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class Limits:
    max_utterances: int = 64  # texts per request
    max_tokens: int = 512  # tokens per utterance (as slotfill.data.tokenize counts)
    max_body_bytes: int = 1 << 20  # request body size
    max_n_best: int = 20  # "n_best" of a request: tag sequences listed per utterance

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive integer, not {value!r}")


@dataclass(frozen=True)
class Batching:
    """Dynamic batching: at most `max_batch` utterances per forward pass; a pass waits at
    most `max_wait_ms` for requests that are still being received; beyond `max_queue`
    requests pending (being received, queued or in the running pass), new ones are
    refused with 503.

    The default 64 is one full pass of the default `max_batch` pending besides the
    running one: under 256 clients that retry at once, the requests accepted wait 75 ms
    (p99; 128 made it 123 ms, benchmarks/results/serve.md), so latency stays bounded
    and a client told "busy" can try another server at once, where an unbounded queue
    made 256 clients wait 2.7 s (p99)."""

    max_batch: int = 64
    max_wait_ms: float = 2.0
    max_queue: int = 64

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"Batching.max_batch must be at least 1, not {self.max_batch}")
        if self.max_queue < 1:
            raise ValueError(f"Batching.max_queue must be at least 1, not {self.max_queue}")
        if not 0 <= self.max_wait_ms <= 1000:
            raise ValueError(f"Batching.max_wait_ms must be 0-1000, not {self.max_wait_ms}")


class Served:
    """The model a server answers with. `slotfill serve --label-studio`'s retraining
    swaps it (loop/retrain.py): every request reads the current one."""

    def __init__(self, predictor: Predictor) -> None:
        self.lock = threading.Lock()
        self.predictor, self.version_of = predictor, {}

    def current(self) -> tuple[Predictor, str]:
        with self.lock:
            return self.predictor, self.version

    @property
    def checkpoint(self) -> Path:
        return self.predictor.path

    @property
    def version(self) -> str:
        """Label Studio's model version of the current model (loop/tasks.py)."""
        path = self.predictor.path
        if path not in self.version_of:
            self.version_of[path] = model_version(path)
        return self.version_of[path]

    def labels(self) -> dict:
        return labels(self.predictor)

    def swap(self, checkpoint: Path) -> None:
        """Load `checkpoint` (outside the lock) and answer with it from now on."""
        fresh = Predictor(checkpoint, device=str(self.predictor.device))
        version = model_version(fresh.path)
        with self.lock:
            self.predictor, self.version_of[fresh.path] = fresh, version


class ApiError(Exception):
    """A request the API refuses: answered as `{"error": message}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def labels(predictor: Predictor) -> dict:
    """Tag labels, slot types (tags without B-/I-, first-seen order) and intents."""
    tags = list(predictor.vocabs.tags.itos)
    slots = slot_types(tags)
    intents = predictor.vocabs.intents  # the corpus may have them, the model not use them
    return {"slots": slots, "tags": tags,
            "intents": list(intents.itos) if intents and predictor.predicts_intents else None}


def header(scope: dict, name: bytes) -> str | None:
    """The value of a request header (`name` in lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def read_body(scope: dict, receive: Receive, limit: int) -> bytes:
    """The request body, refused (413) beyond `limit` bytes: by its declared
    Content-Length before reading, and by the bytes actually received while reading
    (a missing or false Content-Length cannot get past)."""
    declared = header(scope, b"content-length")
    if declared is not None and not declared.strip().isdigit():
        raise ApiError(400, f"invalid Content-Length header: {declared!r}")
    if declared is not None and int(declared) > limit:
        raise ApiError(413, f"request body of {int(declared)} bytes is too large; "
                            f"the limit is {limit} bytes")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":  # nobody to answer; no traceback either
            raise ApiError(400, "client disconnected while sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body is too large (over {limit} bytes); "
                                f"the limit is {limit} bytes")
        if not message.get("more_body", False):
            return b"".join(chunks) + chunk if chunks else chunk  # one chunk: no copy
        chunks.append(chunk)


def parse_texts(body: bytes) -> tuple[list[str], bool, object]:
    """The utterances of a request body, whether it asked for a single one, and its
    "n_best" (None without; checked by check_n_best)."""
    try:
        payload = json.loads(body)
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ApiError(400, f"request body is not valid JSON: {reason}") from None
    except RecursionError:
        raise ApiError(400, "request body is nested too deeply to parse") from None
    expected = 'expected {"text": "..."} or {"texts": ["...", ...]}, optionally with "n_best"'
    if not isinstance(payload, dict):
        raise ApiError(422, f"request body must be a JSON object; {expected}")
    unknown = sorted(set(payload) - {"text", "texts", "n_best"})
    if unknown:
        raise ApiError(422, f"unknown field(s) {', '.join(map(json.dumps, unknown))}; {expected}")
    n_best = payload.pop("n_best", None)
    if len(payload) != 1:
        raise ApiError(422, f"give exactly one of \"text\" and \"texts\"; {expected}")
    if "text" in payload:
        if not isinstance(payload["text"], str):
            raise ApiError(422, f"\"text\" must be a string, not {_json_type(payload['text'])}")
        return [payload["text"]], True, n_best
    texts = payload["texts"]
    if not isinstance(texts, list):
        raise ApiError(422, f"\"texts\" must be a list of strings, not {_json_type(texts)}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ApiError(422, f"\"texts\" must be a list of strings; item {i} is "
                                f"{_json_type(text)}")
    return texts, False, n_best


def _json_type(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int:
            "a number", float: "a number", type(None): "null"}.get(type(value), "a value")


def check_n_best(n_best: object, predictor: Predictor, limits: Limits) -> int | None:
    """A request's "n_best": None, or a whole number from 1 to the limit that the
    model can answer (not a seq2seq one)."""
    if n_best is None:
        return None
    try:
        predictor.check_n_best(n_best, '"n_best"')
    except UsageError as exc:
        raise ApiError(422, f"{exc.title}: {exc.detail}") from None
    if n_best > limits.max_n_best:
        raise ApiError(422, f"\"n_best\" is {n_best}; the limit is {limits.max_n_best}")
    return n_best


def check_limits(texts: list[str], single: bool, predictor: Predictor,
                 limits: Limits) -> list[list[Token]]:
    """The texts' tokens, once they are within the limits."""
    if len(texts) > limits.max_utterances:
        raise ApiError(422, f"too many utterances: {len(texts)}; the limit is "
                            f"{limits.max_utterances} per request")
    tokenized = [predictor.tokenize(text) for text in texts]
    for i, tokens in enumerate(tokenized):
        n = len(tokens)
        if n > limits.max_tokens:
            which = "\"text\"" if single else f"utterance {i} of \"texts\""
            raise ApiError(422, f"{which} has {n} tokens; the limit is "
                                f"{limits.max_tokens} tokens per utterance")
    return tokenized


ENDPOINTS = "endpoints: POST /predict, GET /health, GET /ready, GET / (demo), GET /docs"
RETRY_AFTER = b"1"  # seconds: the queue drains in well under one (see Batching)

N_BEST_SCHEMA = {"type": "integer", "minimum": 1,
                 "description": "also list each utterance's n most probable tag "
                                "sequences (at most --max-n-best)"}
# POST /predict in the OpenAPI docs (it is no FastAPI route: PredictFirst answers it)
PREDICT_OPERATION = {
    "summary": 'Tag {"text": "..."} or {"texts": ["...", ...]}',
    "operationId": "post_predict",
    "requestBody": {"required": True, "content": {"application/json": {
        "schema": {"oneOf": [
            {"type": "object", "required": ["text"], "additionalProperties": False,
             "properties": {"text": {"type": "string"}, "n_best": N_BEST_SCHEMA}},
            {"type": "object", "required": ["texts"], "additionalProperties": False,
             "properties": {"texts": {"type": "array", "items": {"type": "string"}},
                            "n_best": N_BEST_SCHEMA}}]},
        "example": {"text": "arrive Taipei on Nov 2nd"}}}},
    "responses": {
        "200": {"description": "one result for \"text\", a list for \"texts\"",
                "content": {"application/json": {"schema": {}}}},
        "4XX": {"description": '`{"error": "..."}`: a body that is not valid JSON (400), '
                              "too large (413), of the wrong shape or over a limit (422)"},
        "503": {"description": '`{"error": "..."}` with `Retry-After`: the server is busy '
                               "(--max-queue requests pending); nothing was tagged"}},
}


class PredictFirst(FastAPI):
    """A FastAPI app that hands POST /predict to `predict`, an ASGI app, before its
    middleware and router; everything else is FastAPI's."""

    predict: Callable[[dict, Receive, Send], Awaitable[None]]

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/predict":
            await self.predict(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def json_body(payload) -> bytes:
    """`payload` as Starlette's JSONResponse encodes it."""
    return json.dumps(payload, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode()


async def respond(send: Send, status: int, body: bytes, headers: tuple = ()) -> None:
    """A JSON response through ASGI."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


def create_app(predictor: Predictor, limits: Limits, model_name: str | None = None,
               batching: Batching = Batching(),
               label_studio: LabelStudioSettings | None = None) -> FastAPI:
    """The API over one loaded `predictor`; `model_name` (e.g. the checkpoint path) is
    what /health reports as "model". `label_studio`: also a Label Studio ML backend under
    /label-studio/ (loop/backend.py), whose retraining may swap the model."""
    app = PredictFirst(title="slotfill", summary="Slot filling: tag the words of an utterance",
                       redoc_url=None)
    served = Served(predictor)
    health = {"status": "ok", "model": model_name or f"{predictor.config.model.type} tagger",
              "limits": asdict(limits)}
    page = files("slotfill.serving").joinpath("demo.html").read_text(encoding="utf-8")

    def tag(items: list[tuple[str, list[Token], int | None]]) -> list[dict]:
        """One forward pass over the utterances of several requests (a worker thread),
        and one more for those that ask for n-best lists: the most any of them asks for,
        each given its first n (k-best Viterbi's first n are its n best)."""
        try:
            predictor = served.predictor
            results = predictor.predict([text for text, _, _ in items],
                                        [tokens for _, tokens, _ in items])
            asking = [i for i, (_, _, n) in enumerate(items) if n is not None]
            if asking:
                found = predictor.alternatives(
                    [items[i][0] for i in asking], [items[i][1] for i in asking],
                    max(items[i][2] for i in asking))
                for i, alternatives in zip(asking, found):
                    results[i]["n_best"] = alternatives[:items[i][2]]
            return results
        except Exception:  # a bug, not the client's fault: log it here once, never send it
            traceback.print_exc(file=sys.stderr)
            raise

    batcher = Batcher(tag, batching.max_batch, batching.max_wait_ms / 1000)
    app.state.batcher = batcher

    async def answer(scope: dict, receive: Receive) -> tuple[int, object]:
        """POST /predict: the status and JSON payload of its response."""
        with batcher.receiving():
            texts, single, n_best = parse_texts(await read_body(scope, receive,
                                                                limits.max_body_bytes))
            n_best = check_n_best(n_best, served.predictor, limits)
            tokenized = check_limits(texts, single, served.predictor, limits)
        try:
            results = await batcher.submit([(text, tokens, n_best)
                                            for text, tokens in zip(texts, tokenized)])
        except Exception:  # logged by tag()
            return 500, {"error": "internal error while tagging; see the server log"}
        return 200, results[0] if single else results

    async def predict(scope: dict, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            message = f"Method Not Allowed: {scope['method']} /predict; {ENDPOINTS}"
            await respond(send, 405, json_body({"error": message}), ((b"allow", b"POST"),))
            return
        if batcher.pending >= batching.max_queue:  # refused before reading anything
            message = (f"server busy: {batcher.pending} requests pending (--max-queue "
                       f"{batching.max_queue}); retry after {RETRY_AFTER.decode()} s")
            await respond(send, 503, json_body({"error": message}),
                          ((b"retry-after", RETRY_AFTER),))
            return
        try:
            status, payload = await answer(scope, receive)
            body = json_body(payload)
        except ApiError as exc:
            status, body = exc.status, json_body({"error": exc.message})
        except Exception:  # a bug: logged, answered without its details
            traceback.print_exc(file=sys.stderr)
            status, body = 500, json_body({"error": "internal error; see the server log"})
        await respond(send, status, body)

    app.predict = predict

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schema["paths"]["/predict"] = {"post": PREDICT_OPERATION}
        return app.openapi_schema

    app.openapi = openapi

    @app.exception_handler(StarletteHTTPException)  # 404, 405: JSON like the rest
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": f"{exc.detail}: {request.method} {request.url.path}; "
                                      f"{ENDPOINTS}"},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def get_demo() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/health", summary="The model, its labels and the request limits")
    async def get_health() -> JSONResponse:
        return JSONResponse({**health, "labels": served.labels()})

    @app.get("/ready", summary="Whether the server takes requests now: 503 while it is "
                               "saturated (--max-queue requests pending)")
    async def get_ready() -> JSONResponse:
        pending, most = batcher.pending, batching.max_queue
        if pending >= most:
            return JSONResponse({"status": "saturated", "pending": pending, "max_queue": most},
                                status_code=503,
                                headers={"retry-after": RETRY_AFTER.decode()})
        return JSONResponse({"status": "ready", "pending": pending, "max_queue": most})

    if label_studio is not None:
        from slotfill.loop.backend import router
        app.include_router(router(served, label_studio))
    return app


def run_server(model_path: Path, host: str, port: int, limits: Limits,
               device: str = "cpu", batching: Batching = Batching(),
               workers: int = 1, label_studio: LabelStudioSettings | None = None) -> None:
    """Load the model and serve it until interrupted (Ctrl-C / SIGTERM): in this
    process, or in `workers` processes, each with its own copy of the model."""
    # bound before loading: a busy port fails fast, with a clear error
    sockets = listening_sockets(host, port, workers)
    host, port = sockets[0].getsockname()[:2]  # the real port when --port 0 let the OS choose
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address in a URL
    processes = f" with {workers} worker processes" if workers > 1 else ""
    backend = (f"; Label Studio ML backend at http://{shown}:{port}/label-studio"
               if label_studio is not None else "")
    banner = (f"serving {model_path} on http://{shown}:{port}{processes} (demo page at /, "
              f"POST /predict, GET /health, GET /ready, docs at /docs{backend}; Ctrl-C stops)")
    # each process gets its share of the cores, and one of them stays with its event loop
    threads = max(1, usable_cores() // workers - 1)
    settings = (model_path, limits, device, batching, threads, label_studio)
    if workers == 1:
        serve_socket(sockets[0], *settings, ready=lambda: print(banner, file=sys.stderr,
                                                                flush=True))
    else:
        run_workers(serve_socket, sockets, settings,
                    ready=lambda: print(banner, file=sys.stderr, flush=True))


def serve_socket(sock: socket.socket, model_path: Path, limits: Limits, device: str,
                 batching: Batching, threads: int,
                 label_studio: LabelStudioSettings | None, ready: Callable[[], None]) -> None:
    """Load the model and serve the API on `sock` until a signal stops uvicorn, calling
    `ready()` once it accepts connections; torch gets `threads` intra-op threads unless
    OMP_NUM_THREADS says."""
    import torch
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:  # listening
                ready()

    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(threads)
    app = create_app(Predictor(model_path, device=device), limits, model_name=str(model_path),
                     batching=batching, label_studio=label_studio)
    # uvicorn.run() without its exit code 3 on start-up failure: serves on our socket.
    # No proxy-headers middleware: nothing here reads the client's address.
    Server(uvicorn.Config(app, log_level="warning", proxy_headers=False)).run(sockets=[sock])
