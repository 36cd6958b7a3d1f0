"""`slotfill serve`: a JSON HTTP API over a Predictor, on FastAPI + uvicorn.

    POST /predict  {"text": "..."} -> one result (what `slotfill predict --json` prints)
                   {"texts": ["...", ...]} -> a list of results
    GET  /health   {"status": "ok", "model", "labels": {slots, tags, intents}, "limits"}
    GET  /         a demo page (demo.html) that calls /predict
    GET  /docs     the OpenAPI docs (FastAPI's), /openapi.json their schema

Every error of the API is a 4xx (or 500) response `{"error": "<one line>"}`, never a
traceback. The model is loaded once; requests that arrive together are tagged in one
forward pass in a worker thread (batcher.py)."""

from __future__ import annotations

import json
import os
import socket
import sys
import traceback
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from slotfill.data.bio import slot_types
from slotfill.data.tokenize import Token
from slotfill.errors import SlotfillError
from slotfill.serving.batcher import Batcher
from slotfill.serving.predict import Predictor
from slotfill.threads import usable_cores


@dataclass(frozen=True)
class Limits:
    max_utterances: int = 64  # texts per request
    max_tokens: int = 512  # tokens per utterance (as slotfill.data.tokenize counts)
    max_body_bytes: int = 1 << 20  # request body size

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive integer, not {value!r}")


@dataclass(frozen=True)
class Batching:
    """Dynamic batching: at most `max_batch` utterances per forward pass; a pass waits at
    most `max_wait_ms` for requests that are still being received."""

    max_batch: int = 64
    max_wait_ms: float = 2.0

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"Batching.max_batch must be at least 1, not {self.max_batch}")
        if not 0 <= self.max_wait_ms <= 1000:
            raise ValueError(f"Batching.max_wait_ms must be 0-1000, not {self.max_wait_ms}")


class ApiError(Exception):
    """A request the API refuses: answered as `{"error": message}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def labels(predictor: Predictor) -> dict:
    """Tag labels, slot types (tags without B-/I-, first-seen order) and intents."""
    tags = list(predictor.vocabs.tags.itos)
    slots = slot_types(tags)
    intents = predictor.vocabs.intents  # the corpus may have them, the model not use them
    return {"slots": slots, "tags": tags,
            "intents": list(intents.itos) if intents and predictor.predicts_intents else None}


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) beyond `limit` bytes: by its declared
    Content-Length before reading, and by the bytes actually received while reading
    (a missing or false Content-Length cannot get past)."""
    declared = request.headers.get("content-length")
    if declared is not None and not declared.strip().isdigit():
        raise ApiError(400, f"invalid Content-Length header: {declared!r}")
    if declared is not None and int(declared) > limit:
        raise ApiError(413, f"request body of {int(declared)} bytes is too large; "
                            f"the limit is {limit} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ApiError(413, f"request body is too large (over {limit} bytes); "
                                    f"the limit is {limit} bytes")
    except ClientDisconnect:  # nobody to answer; keeps tracebacks out of the server log
        raise ApiError(400, "client disconnected while sending the body") from None
    return bytes(body)


def parse_texts(body: bytes) -> tuple[list[str], bool]:
    """The utterances of a request body, and whether it asked for a single one."""
    try:
        payload = json.loads(body)
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ApiError(400, f"request body is not valid JSON: {reason}") from None
    except RecursionError:
        raise ApiError(400, "request body is nested too deeply to parse") from None
    expected = 'expected {"text": "..."} or {"texts": ["...", ...]}'
    if not isinstance(payload, dict):
        raise ApiError(422, f"request body must be a JSON object; {expected}")
    unknown = sorted(set(payload) - {"text", "texts"})
    if unknown:
        raise ApiError(422, f"unknown field(s) {', '.join(map(json.dumps, unknown))}; {expected}")
    if len(payload) != 1:
        raise ApiError(422, f"give exactly one of \"text\" and \"texts\"; {expected}")
    if "text" in payload:
        if not isinstance(payload["text"], str):
            raise ApiError(422, f"\"text\" must be a string, not {_json_type(payload['text'])}")
        return [payload["text"]], True
    texts = payload["texts"]
    if not isinstance(texts, list):
        raise ApiError(422, f"\"texts\" must be a list of strings, not {_json_type(texts)}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ApiError(422, f"\"texts\" must be a list of strings; item {i} is "
                                f"{_json_type(text)}")
    return texts, False


def _json_type(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int:
            "a number", float: "a number", type(None): "null"}.get(type(value), "a value")


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


# /predict reads its body itself (limits first); its shape, for the OpenAPI docs
PREDICT_BODY = {"required": True, "content": {"application/json": {
    "schema": {"oneOf": [
        {"type": "object", "required": ["text"], "additionalProperties": False,
         "properties": {"text": {"type": "string"}}},
        {"type": "object", "required": ["texts"], "additionalProperties": False,
         "properties": {"texts": {"type": "array", "items": {"type": "string"}}}}]},
    "example": {"text": "arrive Taipei on Nov 2nd"}}}}


def create_app(predictor: Predictor, limits: Limits, model_name: str | None = None,
               batching: Batching = Batching()) -> FastAPI:
    """The API over one loaded `predictor`; `model_name` (e.g. the checkpoint path) is
    what /health reports as "model"."""
    app = FastAPI(title="slotfill", summary="Slot filling: tag the words of an utterance",
                  redoc_url=None)
    health = {"status": "ok", "model": model_name or f"{predictor.config.model.type} tagger",
              "labels": labels(predictor), "limits": asdict(limits)}
    page = files("slotfill.serving").joinpath("demo.html").read_text(encoding="utf-8")

    def tag(items: list[tuple[str, list[Token]]]) -> list[dict]:
        """One forward pass over the utterances of several requests (a worker thread)."""
        try:
            return predictor.predict([text for text, _ in items],
                                     [tokens for _, tokens in items])
        except Exception:  # a bug, not the client's fault: log it here once, never send it
            traceback.print_exc(file=sys.stderr)
            raise

    batcher = Batcher(tag, batching.max_batch, batching.max_wait_ms / 1000)
    app.state.batcher = batcher

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.message)

    @app.exception_handler(StarletteHTTPException)  # 404, 405: JSON like the rest
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}; "
                                      "endpoints: POST /predict, GET /health, GET / (demo), "
                                      "GET /docs",
                     getattr(exc, "headers", None))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def get_demo() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/health", summary="The model, its labels and the request limits")
    async def get_health() -> JSONResponse:
        return JSONResponse(health)

    @app.post("/predict", summary='Tag {"text": "..."} or {"texts": ["...", ...]}',
              openapi_extra={"requestBody": PREDICT_BODY})
    async def post_predict(request: Request) -> JSONResponse:
        with batcher.receiving():
            texts, single = parse_texts(await read_body(request, limits.max_body_bytes))
            tokenized = check_limits(texts, single, predictor, limits)
        try:
            results = await batcher.submit(list(zip(texts, tokenized)))
        except Exception:  # logged by tag()
            return error(500, "internal error while tagging; see the server log")
        return JSONResponse(results[0] if single else results)

    return app


def run_server(model_path: Path, host: str, port: int, limits: Limits,
               device: str = "cpu", batching: Batching = Batching()) -> None:
    """Load the model once and serve it until interrupted (Ctrl-C / SIGTERM)."""
    import torch
    import uvicorn

    sock = bind(host, port)  # before loading: a busy port fails fast, with a clear error
    if not os.environ.get("OMP_NUM_THREADS"):  # one core stays with the event loop
        torch.set_num_threads(max(1, usable_cores() - 1))
    app = create_app(Predictor(model_path, device=device), limits, model_name=str(model_path),
                     batching=batching)
    host, port = sock.getsockname()[:2]  # the real port when --port 0 let the OS choose
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address in a URL
    print(f"serving {model_path} on http://{shown}:{port} "
          f"(demo page at /, POST /predict, GET /health, docs at /docs; Ctrl-C stops)",
          file=sys.stderr, flush=True)
    # uvicorn.run() without its exit code 3 on start-up failure: serves on our socket
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


def bind(host: str, port: int) -> socket.socket:
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
        sock.bind((host, port))
        return sock
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise SlotfillError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}",
                            "choose another --port (or --host)") from None
