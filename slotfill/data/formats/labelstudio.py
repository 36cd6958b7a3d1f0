"""Label Studio exports of span labelling (`<Labels>` on a `<Text>`, as for NER): the JSON
export, a list of tasks with `data` and `annotations[].result[]`, and the JSON-MIN
export, one flat object per task.

    [{"id": 7, "data": {"text": "fly to Taipei"}, "annotations": [{"result": [
        {"type": "labels", "value": {"start": 7, "end": 13, "text": "Taipei",
                                     "labels": ["city"]}},
        {"type": "choices", "value": {"choices": ["book_flight"]}}]}]}]
    [{"id": 7, "text": "fly to Taipei", "intent": "book_flight",
      "label": [{"start": 7, "end": 13, "text": "Taipei", "labels": ["city"]}]}]

A task's annotation is the one marked `ground_truth`, else the first not cancelled; a
task without one is skipped (one line says how many). The text is `data.text` (or the
field the results name in `to_name`, or the one string in `data`); a `choices` result
gives the intent (JSON-MIN: a string field `intent`). Offsets that Label Studio counted
in UTF-16 code units (text with emoji) are recognised by `value.text` and converted. A
span with several labels keeps the first (a repair). One file, split by data.split, or
train.json, valid.json (or dev.json) and test.json.
"""

from __future__ import annotations

import json
from pathlib import Path

from slotfill.data.annotation import annotated_example
from slotfill.data.example import SPLITS, Example, Issues, ReadOptions
from slotfill.data.formats.files import locate_split, read_lines, read_splits

NAME = "labelstudio"
DESCRIPTION = ("Label Studio JSON or JSON-MIN export (.json): [{\"data\": {\"text\"}, "
               "\"annotations\": [{\"result\": [{\"value\": {\"start\", \"end\", "
               "\"labels\"}}]}]}]")
SUFFIXES = (".json",)


def _first_task(path: Path) -> dict | None:
    """The first element of a file holding a JSON list, for detection."""
    if path.is_dir():
        path = locate_split(path, "train", SUFFIXES)
    if path is None or path.suffix != ".json":
        return None
    try:
        text = path.read_text(encoding="utf-8-sig").lstrip()
        if not text.startswith("["):
            return None
        start = len(text) - len(text[1:].lstrip())
        first, _ = json.JSONDecoder().raw_decode(text, start)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return first if isinstance(first, dict) else None


def detect(path: Path) -> bool:
    task = _first_task(path) if path.exists() else None
    return task is not None and ("annotations" in task or "completions" in task
                                 or isinstance(task.get("data"), dict) or bool(_min_spans(task)))


def read(path: Path, options: ReadOptions, issues: Issues, splits: tuple[str, ...] = SPLITS,
         optional: tuple[str, ...] = ()) -> dict[str, list[Example]]:
    return read_splits(path, read_file, SUFFIXES, options, issues, splits, optional)


def read_file(path: Path, options: ReadOptions, issues: Issues) -> list[Example] | None:
    tasks = _tasks(path, issues)
    if tasks is None:
        return None
    examples, unannotated = [], 0
    for line, task in tasks:
        where = f"{path}:{line}"
        if not isinstance(task, dict):
            issues.error(f"{where}: expected a task object, got {type(task).__name__}")
            continue
        full = "data" in task or "annotations" in task or "completions" in task
        read = _full_task if full else _min_task
        found = read(task)
        if found is None:
            unannotated += 1
            continue
        text, spans, intent = found
        if not isinstance(text, str):
            issues.error(f"{where}: expected the task's text to be a string, got "
                         f"{type(text).__name__}")
            continue
        spans = [s for s in (_span(v, text, where, issues) for v in spans) if s is not None]
        example = annotated_example(text, spans, intent, where, options.tokenizer, issues)
        if example is not None:
            examples.append(example)
    if unannotated:
        issues.warn(f"{path}: tasks without an annotation skipped: {unannotated}")
    return examples


def _tasks(path: Path, issues: Issues) -> list[tuple[int, object]] | None:
    """(line, task) for each element of the file's JSON list."""
    lines = read_lines(path, issues)
    if lines is None:
        return None
    text = "\n".join(lines)
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as exc:
        issues.error(f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})")
        return None
    if not isinstance(tasks, list):
        issues.error(f"{path}: expected a JSON list of tasks (Label Studio's JSON or JSON-MIN "
                     f"export), got {type(tasks).__name__}")
        return None
    decoder, found = json.JSONDecoder(), []
    position, line, counted = text.index("[") + 1, 1, 0
    for _ in tasks:  # walk the list again for the line each task starts on
        while text[position] in " \t\n\r,":
            position += 1
        line += text.count("\n", counted, position)
        counted = position
        value, position = decoder.raw_decode(text, position)
        found.append((line, value))
    return found


def _full_task(task: dict):
    """(text, span values, intent) of a JSON-export task; None when it has no annotation."""
    data = task.get("data") if isinstance(task.get("data"), dict) else {}
    annotations = [a for a in task.get("annotations", task.get("completions")) or []
                   if isinstance(a, dict) and not a.get("was_cancelled")]
    chosen = next((a for a in annotations if a.get("ground_truth")),
                  annotations[0] if annotations else None)
    if chosen is None:
        return None
    results = [r for r in chosen.get("result") or [] if isinstance(r, dict)]
    values = [r.get("value") for r in results if r.get("type") in ("labels", None)
              and isinstance(r.get("value"), dict) and "start" in r["value"]]
    choices = [r["value"].get("choices") for r in results if r.get("type") == "choices"
               and isinstance(r.get("value"), dict)]
    intent = next((c[0] for c in choices if isinstance(c, list) and c), None)
    named = next((r.get("to_name") for r in results if r.get("to_name") in data), None)
    strings = [v for v in data.values() if isinstance(v, str)]
    text = data.get(named or "text", strings[0] if len(strings) == 1 else None)
    return text, values, intent


def _min_spans(task: dict) -> list[dict]:
    """The span values of a JSON-MIN task: every list of objects with start and end."""
    return [v for value in task.values() if isinstance(value, list)
            for v in value if isinstance(v, dict) and "start" in v and "end" in v]


def _min_task(task: dict):
    """(text, span values, intent) of a JSON-MIN task; None when it has no annotation."""
    values = _min_spans(task)
    if not values and "annotation_id" not in task:
        return None
    intent = task.get("intent") if isinstance(task.get("intent"), str) else None
    return task.get("text"), values, intent


def _span(value: dict, text: str, where: str, issues: Issues):
    """(start, end, label) of one result's value, its offsets in Python characters."""
    start, end, labels = value.get("start"), value.get("end"), value.get("labels")
    if not isinstance(labels, list) or not labels:
        issues.repair(f"{where}: span {start}-{end} has no label ({labels!r}); span dropped")
        return None
    if len(labels) > 1:
        issues.repair(f"{where}: span {start}-{end} has {len(labels)} labels {labels!r}; "
                      f"repaired by keeping the first")
    quoted = value.get("text")
    if isinstance(quoted, str) and isinstance(start, int) and isinstance(end, int) \
            and text[start:end] != quoted:
        moved = _from_utf16(text, start, end)
        if moved is not None and text[moved[0]:moved[1]] == quoted:
            start, end = moved
        elif 0 <= start < end <= len(text):  # (outside the text: check_span drops it)
            issues.repair(f"{where}: span {start}-{end} ({labels[0]}) says its text is "
                          f"{quoted!r} but the task's text has {text[start:end]!r} there; "
                          "the offsets are used")
    return start, end, labels[0]


def _from_utf16(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Offsets counted in UTF-16 code units (JavaScript's), as Python's; None if the text
    has no character outside the Basic Multilingual Plane."""
    if all(ord(c) < 0x10000 for c in text):
        return None
    units, where = 0, {}
    for i, c in enumerate(text):
        where[units] = i
        units += 2 if ord(c) >= 0x10000 else 1
    where[units] = len(text)
    if start in where and end in where:
        return where[start], where[end]
    return None
