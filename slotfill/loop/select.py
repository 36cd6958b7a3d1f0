"""`slotfill select`: rank a file of unlabelled utterances for annotation with a trained
model, and write the top ones with the model's pre-annotations for a person to correct.

The ranking orders the file's utterances by an uncertainty measure (uncertainty.py),
most uncertain first. With `diverse`, a candidate whose words overlap one already chosen
by at least `max_similarity` (Jaccard similarity of their word sets) waits until the
top is filled, so that near-duplicates are not all picked. The top goes out as a Label
Studio import (tasks with `predictions`, whose `score` is the model's confidence, so
that Label Studio's uncertainty sampling orders by it) or as doccano JSON Lines; the
whole ranking, with each utterance's line and score, as TSV.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from slotfill.atomic import atomic_write
from slotfill.errors import DataError
from slotfill.loop.tasks import LabelConfig, doccano_line, label_config, prediction
from slotfill.loop.uncertainty import confidence, uncertainty


@dataclass(frozen=True)
class Candidate:
    line: int  # in the input file, from 1
    text: str
    score: float  # the uncertainty; higher first


def read_pool(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each non-blank line."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"Cannot read {path}", str(exc)) from None
    pool = [(n, line.strip()) for n, line in enumerate(lines, start=1) if line.strip()]
    if not pool:
        raise DataError(f"{path} holds no utterance", "give a text file with one "
                        "utterance a line")
    return pool


def rank(predictor, pool: Sequence[tuple[int, str]], strategy: str, samples: int = 10,
         seed: int = 1) -> list[Candidate]:
    """The pool, most uncertain first (ties in file order)."""
    tokens = [[t.norm for t in predictor.tokenize(text)] for _, text in pool]
    scores = uncertainty(predictor.model, predictor.vocabs, tokens, strategy, samples, seed)
    order = sorted(range(len(pool)), key=lambda i: (-scores[i], i))
    return [Candidate(pool[i][0], pool[i][1], scores[i]) for i in order]


def spread(ranked: Sequence[Candidate], top: int, max_similarity: float,
           words) -> list[Candidate]:
    """`ranked` with the first `top` chosen so that no two share `max_similarity` of
    their words (`words(text)` -> set); the deferred ones follow, then the rest."""
    chosen, deferred, seen = [], [], []
    for i, candidate in enumerate(ranked):
        if len(chosen) == top:
            return chosen + deferred + list(ranked[i:])
        mine = words(candidate.text)
        if any(_jaccard(mine, other) >= max_similarity for other in seen):
            deferred.append(candidate)
            continue
        chosen.append(candidate)
        seen.append(mine)
    return chosen + deferred


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def write_tasks(path: Path, predictor, chosen: Sequence[Candidate], fmt: str,
                config: LabelConfig, model_version: str) -> None:
    """The chosen utterances with the model's answers, as a Label Studio import (a JSON
    list of tasks) or doccano JSON Lines."""
    texts = [c.text for c in chosen]
    results = predictor.predict(texts)
    if fmt == "doccano":
        body = "".join(json.dumps(doccano_line(r), ensure_ascii=False) + "\n"
                       for r in results)
    else:
        sure = [confidence(s) for s in uncertainty(
            predictor.model, predictor.vocabs, [[t.norm for t in predictor.tokenize(x)]
                                                for x in texts], "mnlp")]
        tasks = [{"data": {config.data_key: r["text"]},
                  "meta": {"line": c.line, "uncertainty": c.score},
                  "predictions": [prediction(r, config, p, model_version)]}
                 for c, r, p in zip(chosen, results, sure)]
        body = json.dumps(tasks, ensure_ascii=False, indent=1) + "\n"
    atomic_write(path, lambda f: f.write(body.encode("utf-8")))


def write_ranking(path: Path, ranked: Sequence[Candidate], strategy: str) -> None:
    lines = [f"rank\tline\t{strategy}\ttext"]
    lines += [f"{i}\t{c.line}\t{c.score:.6f}\t{c.text}" for i, c in enumerate(ranked, 1)]
    atomic_write(path, lambda f: f.write(("\n".join(lines) + "\n").encode("utf-8")))


def write_label_config(path: Path, slots: Sequence[str], intents: Sequence[str] | None
                       ) -> None:
    text = label_config(slots, intents)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
