"""A real Label Studio with slotfill as its ML backend, all on the loopback address: a
project, imported tasks, slotfill's predictions retrieved and read back from Label
Studio's own task data, annotations, and a training round that Label Studio starts and
that produces a new model version.

Label Studio lives in a virtual environment of its own (its Django stack is large):
`SLOTFILL_LABEL_STUDIO` names its `label-studio` program, which `.ci/run` installs. Without
it the test skips, except in CI (`CI=true`), where a Label Studio that is missing or does
not start is a failure.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import CONFIGS, tiny_overrides

pytest.importorskip("fastapi")

from test_labelstudio_backend import annotated_tasks  # noqa: E402

from slotfill.config import load_config  # noqa: E402
from slotfill.loop.tasks import label_config  # noqa: E402
from slotfill.serving.predict import Predictor  # noqa: E402
from slotfill.serving.serve import labels  # noqa: E402
from slotfill.training.run import train  # noqa: E402

TOKEN = "5f0c1d2e3b4a59687766554433221100ffeeddcc"  # a legacy API token: 40 hex digits


def label_studio_program() -> str:
    program = os.environ.get("SLOTFILL_LABEL_STUDIO")
    if program and Path(program).is_file():
        return program
    message = ("Label Studio not found: set SLOTFILL_LABEL_STUDIO to its `label-studio` "
               "program (.ci/run installs it)")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, method: str, path: str, body=None, timeout: float = 60):
    request = urllib.request.Request(
        base + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        text = response.read()
        return json.loads(text) if text else None


def wait_until(check, timeout: float, what: str, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            pytest.fail(f"{what}: the process exited with {process.returncode}")
        try:
            found = check()
            if found:
                return found
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(1)
    pytest.fail(f"{what}: not within {timeout:.0f} s")


@pytest.fixture
def label_studio(tmp_path):
    program = label_studio_program()
    port = free_port()
    env = {**os.environ, "ML_BLOCK_LOCAL_IP": "false",  # its ML backend is on this machine
           "USE_DEFAULT_BANNED_SUBNETS": "false"}  # and so is the webhook it sends it
    log = open(tmp_path / "label-studio.log", "w")
    process = subprocess.Popen(
        [program, "start", "--no-browser", "--port", str(port), "--internal-host",
         "127.0.0.1", "--username", "test@example.com", "--password", "slotfill-test-1",
         "--user-token", TOKEN, "--data-dir", str(tmp_path / "label-studio-data"),
         "--enable-legacy-api-token"], stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: call(base, "GET", "/api/projects", timeout=5) is not None, 240,
                   f"Label Studio at {base} (its log: {tmp_path / 'label-studio.log'})",
                   process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def backend(tmp_path, label_studio):
    """`slotfill serve --label-studio` over a joint model trained one epoch."""
    run = tmp_path / "weak"
    run.mkdir()
    train(load_config(CONFIGS / "joint.yaml", tiny_overrides(1) + ["train.ema=0"]), run)
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "slotfill", "serve", "--model", str(run), "--port", str(port),
         "--label-studio", "--label-studio-url", label_studio, "--label-studio-api-key",
         TOKEN, "--retrain-dir", str(tmp_path / "rounds"), "--retrain-epochs", "8"],
        stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/label-studio"
    try:
        wait_until(lambda: call(base, "GET", "/health", timeout=5)["status"] == "UP", 120,
                   "slotfill serve --label-studio", process)
        yield base, run
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def test_label_studio_pre_annotates_with_slotfill_and_retrains_it(label_studio, backend):
    base, run = backend
    known = labels(Predictor(run / "best.pt"))
    project = call(label_studio, "POST", "/api/projects", {
        "title": "slots", "label_config": label_config(known["slots"], known["intents"])})
    pid = project["id"]
    gold = annotated_tasks(24)
    call(label_studio, "POST", f"/api/projects/{pid}/import", [t["data"] for t in gold])
    ml = call(label_studio, "POST", "/api/ml", {
        "url": base, "project": pid, "title": "slotfill", "is_interactive": False})
    assert ml["readable_state"] == "Connected", ml
    first = call(base, "GET", "/health")["model_version"]

    # pre-annotations, as Label Studio stores them in its own task data
    done = call(label_studio, "POST",
                f"/api/dm/actions?id=retrieve_tasks_predictions&project={pid}",
                {"selectedItems": {"all": True, "excluded": []}})
    assert done["processed_items"] == 24, done
    tasks = call(label_studio, "GET", f"/api/tasks?project={pid}&page_size=100")["tasks"]
    assert len(tasks) == 24
    by_text = {t["data"]["text"]: t for t in gold}
    for task in tasks:
        stored = call(label_studio, "GET", f"/api/tasks/{task['id']}")
        [prediction] = stored["predictions"]
        assert prediction["model_version"] == first and 0 < prediction["score"] <= 1
        text = stored["data"]["text"]
        for item in prediction["result"]:
            assert item["to_name"] == "text"
            if item["type"] == "labels":
                value = item["value"]
                assert text[value["start"]:value["end"]] == value["text"]
                assert value["labels"][0] in known["slots"]
            else:
                assert item["value"]["choices"][0] in known["intents"]
        # a person corrects it: the gold annotation
        call(label_studio, "POST", f"/api/tasks/{task['id']}/annotations",
             {"result": by_text[text]["annotations"][0]["result"]})

    # Label Studio starts training; its round ends with a new model version
    call(label_studio, "POST", f"/api/ml/{ml['id']}/train", {})

    def swapped():
        status = call(base, "GET", "/training")
        rounds = [r for r in status["rounds"] if r["annotations"] >= 24]
        return status if not status["training"] and rounds else None
    status = wait_until(swapped, 300, "a retraining round on the annotations")
    last = status["rounds"][-1]
    assert last["state"] == "swapped", last
    assert status["model_version"] != first
    # Label Studio's next predictions come from the new model
    call(label_studio, "POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={pid}",
         {"selectedItems": {"all": True, "excluded": []}})
    stored = call(label_studio, "GET", f"/api/tasks/{tasks[0]['id']}")
    assert status["model_version"] in {p["model_version"] for p in stored["predictions"]}
