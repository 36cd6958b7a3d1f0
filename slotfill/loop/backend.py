"""A Label Studio ML backend inside `slotfill serve --label-studio`, under /label-studio/
(connect Label Studio to http://HOST:PORT/label-studio). The protocol is
HumanSignal/label-studio-ml-backend's:

    GET  /health   {"status": "UP", "model_class": "slotfill", "model_version"}
    POST /setup    {"project": "ID.TIMESTAMP", "schema": LABEL_CONFIG, ...}
                   -> {"model_version"}; the label config must fit the model
    POST /predict  {"tasks": [{"id", "data": {"text"}}], "label_config", "project"}
                   -> {"results": [one prediction per task, in order], "model_version"}
    POST /webhook  {"action": "START_TRAINING" | "ANNOTATION_CREATED" | ..., "project"}
                   -> a retraining round (retrain.py), answered at once
    GET  /training the rounds so far and whether one runs (slotfill's own)

A prediction's `score` is the model's confidence in its answer (exp of minus the
length-normalised log-probability, loop/uncertainty.py), so that Label Studio's
uncertainty sampling shows the least sure first; each slot's is its span's probability.
With basic auth configured (BASIC_AUTH_USER and BASIC_AUTH_PASS, Label Studio's
convention), every route here needs it, compared in constant time. A request that
cannot be served (a label config that does not fit, a body that is not JSON) is answered
`{"error": ...}` with a 4xx status and logged; the served model never changes for it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import sys
from functools import lru_cache

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from slotfill.loop.retrain import LabelStudioSettings, Retrainer
from slotfill.loop.tasks import LabelConfig, LabelConfigError, prediction
from slotfill.loop.uncertainty import confidence, uncertainty

PREFIX = "/label-studio"
TRAINING_EVENTS = ("START_TRAINING", "ANNOTATION_CREATED", "ANNOTATION_UPDATED",
                   "ANNOTATIONS_CREATED")


def log(message: str) -> None:
    print(f"label-studio: {message}", file=sys.stderr, flush=True)


def router(holder, settings: LabelStudioSettings) -> APIRouter:
    """The routes over `holder` (serving.serve.Served: the model, swapped by retraining)."""
    routes = APIRouter(prefix=PREFIX, tags=["Label Studio ML backend"])
    retrainer = Retrainer(holder, settings, log)
    projects: dict[int, LabelConfig] = {}  # set up by /setup

    def refused(status: int, message: str, detail: str = "") -> JSONResponse:
        log(f"{message}{': ' + detail if detail else ''}")
        return JSONResponse({"error": message + (f": {detail}" if detail else "")},
                            status_code=status)

    async def body(request: Request) -> dict:
        try:
            payload = json.loads(await request.body() or b"{}")
        except ValueError:
            raise BadRequest("the request body is not JSON") from None
        if not isinstance(payload, dict):
            raise BadRequest("the request body must be a JSON object")
        return payload

    def authorised(request: Request) -> bool:
        if settings.basic_auth is None:
            return True
        return basic_auth_matches(request.headers.get("authorization"), settings.basic_auth)

    def config_of(xml: str) -> LabelConfig:
        config = parse_config(xml)
        known = holder.labels()
        config.check(known["slots"], known["intents"])
        return config

    async def guarded(request: Request, handle) -> JSONResponse:
        if not authorised(request):
            return JSONResponse({"error": "basic auth required"}, status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="slotfill"'})
        try:
            return await handle(await body(request) if request.method == "POST" else {})
        except BadRequest as exc:
            return refused(400, str(exc))
        except LabelConfigError as exc:
            return refused(422, exc.title, exc.detail)

    @routes.get("/health")
    async def health(request: Request) -> JSONResponse:
        async def handle(_):
            return JSONResponse({"status": "UP", "model_class": "slotfill",
                                 "model_version": holder.version})
        return await guarded(request, handle)

    @routes.post("/setup")
    async def setup(request: Request) -> JSONResponse:
        async def handle(payload):
            project = project_id(payload.get("project"))
            schema = payload.get("schema") or payload.get("label_config")
            if not isinstance(schema, str):
                raise BadRequest('expected the project\'s label config as "schema"')
            projects[project] = config_of(schema)
            log(f"project {project} set up; model {holder.version}")
            return JSONResponse({"model_version": holder.version})
        return await guarded(request, handle)

    @routes.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        async def handle(payload):
            tasks = payload.get("tasks")
            if not isinstance(tasks, list):
                raise BadRequest('expected "tasks": a list of tasks')
            xml = payload.get("label_config")
            project = payload.get("project")
            if isinstance(xml, str):
                config = config_of(xml)
            elif project is not None and project_id(project) in projects:
                config = projects[project_id(project)]
            else:
                config = LabelConfig()
            results = await run_in_threadpool(answer, tasks, config)  # off the event loop
            return JSONResponse({"results": results, "model_version": holder.version})
        return await guarded(request, handle)

    def answer(tasks: list, config: LabelConfig) -> list[dict]:
        """One prediction per task, in order; an empty result where there is no text."""
        predictor, version = holder.current()
        texts = [task_text(t, config) for t in tasks]
        found = [i for i, text in enumerate(texts) if text.strip()]
        results = predictor.predict([texts[i] for i in found]) if found else []
        tokens = [[t.norm for t in predictor.tokenize(texts[i])] for i in found]
        sure = [confidence(s) for s in uncertainty(predictor.model, predictor.vocabs,
                                                   tokens, "mnlp")] if found else []
        out = [{"model_version": version, "score": 0.0, "result": []} for _ in tasks]
        for i, result, p in zip(found, results, sure):
            out[i] = prediction(result, config, p, version)
        return out

    @routes.post("/webhook")
    async def webhook(request: Request) -> JSONResponse:
        async def handle(payload):
            action = payload.get("action")
            project = project_id((payload.get("project") or {}).get("id")
                                 if isinstance(payload.get("project"), dict)
                                 else payload.get("project"))
            if action not in TRAINING_EVENTS:
                return JSONResponse({"status": "ignored", "reason": f"action {action!r}"})
            if projects and project not in projects:
                log(f"webhook for project {project} ignored: this backend serves project(s) "
                    f"{', '.join(map(str, projects))}")
                return JSONResponse({"status": "ignored",
                                     "reason": f"project {project} is not set up here"})
            what = retrainer.request(project)
            log(f"{action} for project {project}: retraining {what}")
            return JSONResponse({"status": what}, status_code=201)
        return await guarded(request, handle)

    @routes.get("/training")
    async def training(request: Request) -> JSONResponse:
        async def handle(_):
            return JSONResponse(retrainer.status())
        return await guarded(request, handle)

    return routes


class BadRequest(Exception):
    """A request body the backend cannot read."""


@lru_cache(maxsize=32)
def parse_config(xml: str) -> LabelConfig:
    return LabelConfig.parse(xml)


def project_id(value) -> int:
    """Label Studio's project id: an int, or "ID.TIMESTAMP" as /setup and /predict send."""
    try:
        return int(str(value).split(".")[0])
    except (TypeError, ValueError):
        raise BadRequest(f"expected a project id, got {value!r}") from None


def task_text(task, config: LabelConfig) -> str:
    """The text a task shows: its data field the label config names, else its only
    string field."""
    data = task.get("data") if isinstance(task, dict) else None
    if not isinstance(data, dict):
        return ""
    if isinstance(data.get(config.data_key), str):
        return data[config.data_key]
    strings = [v for v in data.values() if isinstance(v, str)]
    return strings[0] if len(strings) == 1 else ""


def basic_auth_matches(header: str | None, expected: tuple[str, str]) -> bool:
    """Whether an Authorization header carries these credentials (constant time)."""
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        given = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    wanted = f"{expected[0]}:{expected[1]}".encode()
    return hmac.compare_digest(given, wanted)
