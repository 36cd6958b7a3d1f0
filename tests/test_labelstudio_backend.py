"""`slotfill serve --label-studio`: the Label Studio ML backend's protocol, basic auth, and
retraining rounds against a stand-in Label Studio (an HTTP server on the loopback
address that serves a project's export); tests/test_labelstudio_real.py runs a real one."""

from __future__ import annotations

import json
import threading
import time
import warnings
from base64 import b64encode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import CONFIGS, TINY, tiny_overrides

pytest.importorskip("fastapi")
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from slotfill.config import load_config  # noqa: E402
from slotfill.data.bio import extract_spans  # noqa: E402
from slotfill.loop.retrain import LabelStudioSettings  # noqa: E402
from slotfill.loop.tasks import label_config  # noqa: E402
from slotfill.serving.predict import Predictor  # noqa: E402
from slotfill.serving.serve import Limits, create_app, labels  # noqa: E402
from slotfill.training.run import train  # noqa: E402


@pytest.fixture(scope="module")
def weak_run(tmp_path_factory):
    """A joint model trained one epoch: retraining on annotations beats it."""
    run = tmp_path_factory.mktemp("weak")
    train(load_config(CONFIGS / "joint.yaml", tiny_overrides(1) + ["train.ema=0"]), run)
    return run


def annotated_tasks(count: int = 40) -> list[dict]:
    """The tiny corpus's training utterances as a Label Studio JSON export."""
    lines = {n: (TINY / "train" / n).read_text().splitlines() for n in ("seq.in", "seq.out",
                                                                          "label")}
    tasks = []
    for i, (words, tags, intent) in enumerate(zip(*lines.values())):
        if i == count:
            break
        words, tags = words.split(), tags.split()
        starts = [sum(len(w) + 1 for w in words[:k]) for k in range(len(words))]
        text = " ".join(words)
        result = [{"from_name": "label", "to_name": "text", "type": "labels",
                   "value": {"start": starts[a], "end": starts[b - 1] + len(words[b - 1]),
                             "text": text[starts[a]:starts[b - 1] + len(words[b - 1])],
                             "labels": [slot]}}
                  for slot, a, b in extract_spans(tags)]
        result.append({"from_name": "intent", "to_name": "text", "type": "choices",
                       "value": {"choices": [intent]}})
        tasks.append({"id": i + 1, "data": {"text": text},
                      "annotations": [{"id": i + 1, "result": result}]})
    return tasks


@pytest.fixture
def fake_label_studio():
    """Serves GET /api/projects/1/export to requests with the right token."""
    tasks = annotated_tasks()
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            ok = self.path.startswith("/api/projects/1/export") and \
                self.headers.get("Authorization") == "Token secret"
            body = json.dumps(tasks if ok else {"detail": "no"}).encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def client_for(run, tmp_path, url=None, auth=None, min_annotations=10):
    settings = LabelStudioSettings(url, "secret", tmp_path / "rounds", auth, min_annotations,
                                   epochs=8)
    return TestClient(create_app(Predictor(run / "best.pt"), Limits(), label_studio=settings))


def fitting_config(run) -> str:
    known = labels(Predictor(run / "best.pt"))
    return label_config(known["slots"], known["intents"])


def test_health_setup_and_one_prediction_per_task_in_order(weak_run, tmp_path, capfd):
    client = client_for(weak_run, tmp_path)
    health = client.get("/label-studio/health").json()
    assert health["status"] == "UP" and health["model_class"] == "slotfill"
    setup = client.post("/label-studio/setup", json={"project": "1.1700000000",
                                                     "schema": fitting_config(weak_run)})
    assert setup.status_code == 200 and setup.json()["model_version"] == health["model_version"]
    tasks = [{"id": 1, "data": {"text": "show me flights from boston to denver"}},
             {"id": 2, "data": {"text": "   "}},
             {"id": 3, "data": {"text": "fly to 😀 dallas"}}]
    answer = client.post("/label-studio/predict", json={
        "tasks": tasks, "project": "1.1700000000", "label_config": fitting_config(weak_run)})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert len(results) == 3 and results[1]["result"] == []  # nothing to tag: still one
    for prediction in (results[0], results[2]):
        assert 0 < prediction["score"] <= 1
        kinds = {item["type"] for item in prediction["result"]}
        assert "choices" in kinds  # the intent
        for item in prediction["result"]:
            assert item["to_name"] == "text" and item["from_name"] in ("label", "intent")
    # the plain API is unchanged beside it
    assert client.post("/predict", json={"text": "fly to boston"}).status_code == 200


def test_a_label_config_that_does_not_fit_is_a_clear_answer(weak_run, tmp_path, capfd):
    client = client_for(weak_run, tmp_path)
    schema = ('<View><Text name="text" value="$text"/><Labels name="label" toName="text">'
              '<Label value="toloc.city_name"/><Label value="hotel_name"/></Labels></View>')
    version = client.get("/label-studio/health").json()["model_version"]
    for path, payload in (("/label-studio/setup", {"project": 2, "schema": schema}),
                          ("/label-studio/predict", {"tasks": [{"data": {"text": "hi"}}],
                                                     "label_config": schema})):
        answer = client.post(path, json=payload)
        assert answer.status_code == 422
        assert "does not fit the model" in answer.json()["error"]
        assert "hotel_name" in answer.json()["error"]
    assert "label-studio: The Label Studio label config does not fit" in capfd.readouterr().err
    assert client.post("/label-studio/predict", content=b"{nope").status_code == 400
    assert client.get("/label-studio/health").json()["model_version"] == version


def test_basic_auth_when_configured(weak_run, tmp_path):
    client = client_for(weak_run, tmp_path, auth=("ls", "s3cret"))
    assert client.get("/label-studio/health").status_code == 401
    wrong = b64encode(b"ls:guess").decode()
    assert client.get("/label-studio/health",
                      headers={"Authorization": f"Basic {wrong}"}).status_code == 401
    right = b64encode(b"ls:s3cret").decode()
    assert client.get("/label-studio/health",
                      headers={"Authorization": f"Basic {right}"}).status_code == 200


def wait_for_round(client, count: int = 1, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get("/label-studio/training").json()
        if len(status["rounds"]) >= count and not status["training"]:
            return status
        time.sleep(0.5)
    raise AssertionError(f"no finished round in {timeout} s: {status}")


def test_a_training_round_swaps_in_a_better_model(weak_run, tmp_path, fake_label_studio, capfd):
    url, seen = fake_label_studio
    client = client_for(weak_run, tmp_path, url=url)
    before = client.get("/label-studio/health").json()["model_version"]
    client.post("/label-studio/setup", json={"project": "1.17", "schema": fitting_config(weak_run)})
    other = client.post("/label-studio/webhook", json={"action": "START_TRAINING",
                                                       "project": {"id": 9}})
    assert other.json()["status"] == "ignored" and "project 9" in other.json()["reason"]
    assert client.post("/label-studio/webhook", json={
        "action": "PROJECT_UPDATED", "project": {"id": 1}}).json()["status"] == "ignored"
    started = client.post("/label-studio/webhook", json={"action": "START_TRAINING",
                                                         "project": {"id": 1}})
    assert started.status_code == 201 and started.json()["status"] == "started"
    # /predict answers while the round trains in another process
    assert client.post("/label-studio/predict", json={
        "tasks": [{"data": {"text": "fly to boston"}}]}).status_code == 200
    status = wait_for_round(client)
    round_ = status["rounds"][0]
    assert round_["annotations"] == 40 and seen[0][1] == "Token secret"
    assert round_["state"] == "swapped", round_
    assert round_["scores"]["new"] >= round_["scores"]["served"]
    after = client.get("/label-studio/health").json()["model_version"]
    assert after != before and after == status["model_version"]
    answer = client.post("/label-studio/predict", json={"tasks": [{"data": {"text": "x"}}]})
    assert answer.json()["model_version"] == after
    assert "label-studio: round 1: swapped" in capfd.readouterr().err


def test_rounds_that_cannot_train_leave_the_model_as_it_was(weak_run, tmp_path,
                                                             fake_label_studio, monkeypatch):
    url, _ = fake_label_studio
    silent = client_for(weak_run, tmp_path / "a", url="http://127.0.0.1:9")  # nobody there
    version = silent.get("/label-studio/health").json()["model_version"]
    silent.post("/label-studio/webhook", json={"action": "START_TRAINING", "project": 1})
    failed = wait_for_round(silent)["rounds"][0]
    assert failed["state"] == "failed" and "does not answer" in failed["detail"]
    assert silent.get("/label-studio/health").json()["model_version"] == version
    few = client_for(weak_run, tmp_path / "b", url=url, min_annotations=100)
    few.post("/label-studio/webhook", json={"action": "ANNOTATION_CREATED",
                                            "project": {"id": 1}})
    skipped = wait_for_round(few)["rounds"][0]
    assert skipped["state"] == "skipped" and "needs 100" in skipped["detail"]
    # a new model worse on the held-out part is not swapped in
    from slotfill.loop import retrain
    monkeypatch.setattr(retrain, "judge", lambda served, new: (0.9, 0.8))
    worse = client_for(weak_run, tmp_path / "c", url=url)
    worse.post("/label-studio/webhook", json={"action": "START_TRAINING", "project": 1})
    kept = wait_for_round(worse)["rounds"][0]
    assert kept["state"] == "kept" and "0.8000 < the served model's 0.9000" in kept["detail"]
    assert worse.get("/label-studio/health").json()["model_version"] == version
