"""Retraining behind the Label Studio ML backend: fetch a project's annotations, fine-tune
the served model on them in a background process, and swap the new model in only when
it is at least as good on a held-out part of the annotations.

A round: the project's JSON export (`GET /api/projects/{id}/export`, the annotated tasks,
with the API key as `Authorization: Token KEY`) is written to
`RUNS_DIR/round-N-DATE-TIME.annotations.json` (the round's run directory is
`RUNS_DIR/round-N-DATE-TIME`, its training output `...train.log`);
below `min_annotations` annotated tasks the round stops there (a model fine-tuned and
judged on a handful would be judged by chance). Otherwise `slotfill train` runs in a
child process with the served run's config, `train.init` set to the served run and the
export as its corpus, split 70/15/15 by `data.split` (stratified, deterministic): train,
dev for its early stopping, test to judge it by. Both models are scored on that test
part by the served run's `train.select`; the new one replaces the served one when its
score is at least as high. /predict is never blocked: training runs in another process,
fetching and judging in a thread. A request for a round while one runs queues one more,
which starts when it ends, with the annotations made by then.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SPLIT = "0.7,0.15,0.15"


@dataclass(frozen=True)
class LabelStudioSettings:
    """slotfill serve --label-studio's settings."""

    url: str | None = None  # Label Studio, for the annotations (LABEL_STUDIO_URL)
    api_key: str | None = None  # its API key (LABEL_STUDIO_API_KEY)
    runs_dir: Path = Path("runs/label-studio")  # one folder per retraining round
    basic_auth: tuple[str, str] | None = None  # (user, password) the backend requires
    min_annotations: int = 10
    epochs: int = 10  # of each fine-tuning


@dataclass
class Round:
    number: int
    project: int
    state: str = "fetching"  # fetching, training, judging, swapped, kept, skipped, failed
    detail: str = ""
    annotations: int = 0
    scores: dict = field(default_factory=dict)  # served and new, on the held-out part


class Retrainer:
    """One round at a time; `holder` (serving.serve.Served) is what gets swapped."""

    def __init__(self, holder, settings: LabelStudioSettings,
                 log: Callable[[str], None]) -> None:
        self.holder, self.settings, self.log = holder, settings, log
        self.rounds: list[Round] = []
        self.lock = threading.Lock()
        self.running: threading.Thread | None = None
        self.pending: int | None = None  # a project waiting for the next round

    def request(self, project: int) -> str:
        """Start a round for `project`, or queue one; what happened, in words."""
        with self.lock:
            if self.running is not None and self.running.is_alive():
                self.pending = project
                return "queued: a round is running; another follows it"
            self.running = threading.Thread(target=self._rounds, args=(project,),
                                            daemon=True, name="label-studio-retrain")
            self.running.start()
            return "started"

    def status(self) -> dict:
        with self.lock:
            busy = self.running is not None and self.running.is_alive()
        return {"training": busy, "model_version": self.holder.version,
                "rounds": [vars(r) for r in self.rounds]}

    def _rounds(self, project: int) -> None:
        while project is not None:
            current = Round(len(self.rounds) + 1, project)
            self.rounds.append(current)
            try:
                self._round(current)
            except Exception as exc:  # any failure ends the round, never the server
                current.state, current.detail = "failed", f"{type(exc).__name__}: {exc}"
            self.log(f"round {current.number}: {current.state}"
                     + (f" ({current.detail})" if current.detail else ""))
            with self.lock:
                project, self.pending = self.pending, None

    def _round(self, current: Round) -> None:
        # ROUND/ is the run (the model version names it); its inputs and log beside it
        run = self.settings.runs_dir / time.strftime(f"round-{current.number}-%Y%m%d-%H%M%S")
        run.parent.mkdir(parents=True, exist_ok=True)
        export = run.with_name(run.name + ".annotations.json")
        tasks = fetch_annotations(self.settings, current.project)
        export.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
        current.annotations = sum(1 for t in tasks if _annotated(t))
        if current.annotations < self.settings.min_annotations:
            current.state = "skipped"
            current.detail = (f"{current.annotations} annotated tasks; a round needs "
                              f"{self.settings.min_annotations} to hold some out")
            return
        current.state = "training"
        served = self.holder.checkpoint
        command = [sys.executable, "-m", "slotfill", "train", str(served.parent / "config.yaml"),
                   f"data.path={export}", "data.format=labelstudio", f"data.split={SPLIT}",
                   f"train.init={served.parent}", f"train.epochs={self.settings.epochs}",
                   "train.report=false", "train.threads=1", "distill.teachers=null",
                   "distill.unlabeled=null", "distill.temperature=1.0", "distill.alpha=0.5",
                   "--output", str(run)]
        finished = subprocess.run(command, capture_output=True, text=True)
        run.with_name(run.name + ".train.log").write_text(finished.stdout + finished.stderr)
        for line in (finished.stdout + finished.stderr).splitlines():
            if line.startswith("warning:"):  # repairs of the annotations, say
                self.log(f"round {current.number}: {line}")
        if finished.returncode != 0:
            tail = (finished.stderr.strip().splitlines() or ["no output"])[-3:]
            raise RuntimeError(f"slotfill train exited {finished.returncode}: "
                               + " | ".join(tail))
        current.state = "judging"
        old, new = judge(served, run / "best.pt")
        current.scores = {"served": old, "new": new}
        if new >= old:
            self.holder.swap(run / "best.pt")
            current.state = "swapped"
            current.detail = f"held-out score {new:.4f} >= {old:.4f}; now {self.holder.version}"
        else:
            current.state = "kept"
            current.detail = f"held-out score {new:.4f} < the served model's {old:.4f}"


def _annotated(task: dict) -> bool:
    return any(not a.get("was_cancelled") for a in task.get("annotations") or [])


def fetch_annotations(settings: LabelStudioSettings, project: int) -> list[dict]:
    """The project's annotated tasks, as Label Studio's JSON export gives them."""
    if not settings.url or not settings.api_key:
        raise RuntimeError("no Label Studio to fetch annotations from: set "
                           "LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY (or --label-studio-url "
                           "and --label-studio-api-key)")
    url = f"{settings.url.rstrip('/')}/api/projects/{project}/export?exportType=JSON"
    request = urllib.request.Request(url, headers={
        "Authorization": f"Token {settings.api_key}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            tasks = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"Label Studio answered {exc.code} for {url}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RuntimeError(f"Label Studio at {settings.url} does not answer: {reason}") \
            from None
    except ValueError:
        raise RuntimeError(f"Label Studio's export at {url} is not JSON") from None
    if not isinstance(tasks, list):
        raise RuntimeError(f"Label Studio's export at {url} is not a list of tasks")
    return tasks


def judge(served: Path, new: Path) -> tuple[float, float]:
    """Both models' selection scores (the new run's train.select) on the new run's
    held-out test part."""
    from slotfill.analysis.evaluate import SplitScorer
    from slotfill.data.corpus import ReadOptions, read_corpus
    from slotfill.models.checkpoint import load_checkpoint
    from slotfill.training.run import selection_score

    fresh = load_checkpoint(new)
    cfg = fresh.config
    corpus = read_corpus(cfg.data.path, cfg.data.format, splits=("train", "valid", "test"),
                         options=ReadOptions.from_config(cfg.data))
    held_out = corpus["test"]
    scores = []
    for ckpt in (load_checkpoint(served), fresh):
        found = SplitScorer(held_out, ckpt.vocabs).score(ckpt.build_model())
        metric = cfg.train.select if "intent_accuracy" in found else "f1"
        scores.append(selection_score(found, metric))
    return scores[0], scores[1]
