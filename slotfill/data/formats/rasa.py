"""Rasa NLU training data (YAML): `nlu:` items with an `intent:` and its `examples:`, one
`- ` line each, entities marked up in the text.

    nlu:
    - intent: book_flight
      examples: |
        - fly from [Taipei](city) to [LA]{"entity": "city", "role": "destination"}

`[Taipei](city)` gives slot `city`, a role gives `city.destination`. Rasa data has no
splits: data.split (with data.split_seed) deals the examples to train, valid and test,
stratified by intent. data.path is a YAML file or a directory whose YAML files with an
`nlu:` section are all read (a Rasa project's data/ folder).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from slotfill.data.annotation import Span, annotated_example
from slotfill.data.example import SPLITS, Example, Issues, ReadOptions
from slotfill.data.formats.files import read_lines, split_unsplit

NAME = "rasa"
DESCRIPTION = "Rasa NLU YAML (nlu: - intent: ... examples: |), split by data.split"
# what a mistyped entity leaves in the text: `](` or `]{`, maybe with spaces between
_HALF_WRITTEN = re.compile(r"\]\s*[({]")
_ENTITY = re.compile(r"\[([^\]]+)\](?:\(([^)]+)\)|(\{[^}]*\}))")
_SUFFIXES = (".yml", ".yaml")


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    found = sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
    return [p for p in found if _has_nlu(p)]


def _has_nlu(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8-sig") as f:
            return any(line.startswith("nlu:") for line in f)
    except (OSError, UnicodeDecodeError):
        return False


def detect(path: Path) -> bool:
    if path.is_file():
        return path.suffix in _SUFFIXES and _has_nlu(path)
    return path.is_dir() and bool(_files(path))


def read(path: Path, options: ReadOptions, issues: Issues, splits: tuple[str, ...] = SPLITS,
         optional: tuple[str, ...] = ()) -> dict[str, list[Example]]:
    examples: list[Example] = []
    files = _files(path)
    if not files:
        issues.error(f"{path}: no YAML file with an `nlu:` section")
    for file in files:
        examples += read_file(file, options, issues) or []
    return split_unsplit(path, examples, options, issues, splits)


def read_file(path: Path, options: ReadOptions, issues: Issues) -> list[Example] | None:
    lines = read_lines(path, issues)
    if lines is None:
        return None
    try:
        root = yaml.compose("\n".join(lines), Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        issues.error(f"{path}:{mark.line + 1 if mark else 1}: malformed YAML "
                     f"({getattr(exc, 'problem', None) or exc})")
        return None
    nlu = _value(root, "nlu")
    if not isinstance(nlu, yaml.SequenceNode):
        issues.error(f"{path}: expected `nlu:` with a list of `- intent:` items")
        return None
    examples = []
    for item in nlu.value:
        intent, block = _value(item, "intent"), _value(item, "examples")
        if intent is None:
            continue  # synonym, regex, lookup: not training examples
        if not isinstance(intent, yaml.ScalarNode) or not isinstance(block, yaml.ScalarNode):
            issues.error(f"{path}:{item.start_mark.line + 1}: an intent needs `examples: |` "
                         "with one `- example` line each")
            continue
        # a literal block's lines start on the line after `examples: |`
        first = block.start_mark.line + (1 if block.style in ("|", ">") else 0)
        for offset, line in enumerate(block.value.split("\n")):
            text = line.strip()
            if not text:
                continue
            where = f"{path}:{first + offset + 1}"
            if not text.startswith("-"):
                issues.error(f"{where}: expected an example line starting with `- `, got "
                             f"{text!r}")
                continue
            example = _example(text[1:].strip(), intent.value, where, options, issues)
            if example is not None:
                examples.append(example)
    return examples


def _value(node, key: str):
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if isinstance(k, yaml.ScalarNode)
                 and k.value == key), None)


def _example(marked: str, intent: str, where: str, options: ReadOptions,
             issues: Issues) -> Example | None:
    text_parts: list[str] = []
    spans: list[Span] = []
    position = last = 0
    for match in _ENTITY.finditer(marked):
        before = marked[last:match.start()]
        text_parts.append(before)
        position += len(before)
        words, plain, attributes = match.groups()
        slot = _slot(plain, attributes, where, issues)
        if slot is None:
            return None
        spans.append(Span(position, position + len(words), slot))
        text_parts.append(words)
        position += len(words)
        last = match.end()
    text_parts.append(marked[last:])
    for part in text_parts[::2]:  # the text between entities: no annotation left over
        if _HALF_WRITTEN.search(part):
            issues.error(f"{where}: {marked!r} looks like an entity annotation but is not "
                         'one; write [words](slot) or [words]{"entity": "slot"}')
            return None
    return annotated_example("".join(text_parts), spans, intent, where, options.tokenizer,
                             issues)


def _slot(plain: str | None, attributes: str | None, where: str,
          issues: Issues) -> str | None:
    """`city`, `city:value` (a synonym) or {"entity": "city", "role": "destination"}."""
    if plain is not None:
        return plain.split(":")[0].strip()
    try:
        fields = json.loads(attributes)
    except json.JSONDecodeError as exc:
        issues.error(f"{where}: entity attributes {attributes} are not valid JSON "
                     f"({exc.msg})")
        return None
    if not isinstance(fields, dict) or not isinstance(fields.get("entity"), str):
        issues.error(f"{where}: entity attributes {attributes} need an \"entity\" name")
        return None
    role = fields.get("role")
    return fields["entity"] + (f".{role}" if isinstance(role, str) and role else "")
