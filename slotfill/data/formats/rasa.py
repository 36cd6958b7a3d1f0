"""Rasa NLU training data (YAML, Rasa 2.x and 3.x): `nlu:` items with an `intent:` and its
`examples:`, entities marked up in the text.

    version: "3.1"
    nlu:
    - intent: book_flight
      examples: |
        - fly from [Taipei](city) to [LA]{"entity": "city", "role": "destination"}
    - intent: greet
      examples:
      - text: hello
        metadata: {sentiment: neutral}
    - lookup: city
      examples: |
        - Taipei

`[Taipei](city)` gives slot `city`, a role gives `city.destination`. What else a Rasa
project holds, each said in one line when present:
- a lookup table named after an entity of the corpus becomes a gazetteer of that name
  (each word gets features from its entries, data/gazetteer.py); one naming no entity is
  skipped
- synonyms (`synonym:` tables, `[NYC](city:New York)`, an entity's `"value"`) map words
  to a value that slot filling does not use: the words are tagged as written
- `regex:` tables are skipped (patterns, not words)
- an entity's `group` links entities and is no slot: ignored
- `[LA][{"entity": "city"}, {"entity": "airport"}]` (several entities on one text, Rasa
  3) keeps the first, the others dropped as overlapping spans (a repair each)
- YAML files without an `nlu:` section (rules.yml, stories.yml, domain.yml, config.yml)
  are left out; Rasa 1.x Markdown files (nlu.md) are not read
Rasa data has no splits: data.split (with data.split_seed) deals the examples to train,
valid and test, stratified by intent. data.path is a YAML file or a directory whose YAML
files with an `nlu:` section are all read (a Rasa project, or its data/ folder).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from slotfill.data.annotation import Span, annotated_example, slot_name
from slotfill.data.bio import split_tag
from slotfill.data.example import SPLITS, Example, Issues, ReadOptions
from slotfill.data.formats.files import read_lines, split_unsplit
from slotfill.data.tokenize import tokenize

NAME = "rasa"
DESCRIPTION = "Rasa NLU YAML (nlu: - intent: ... examples: |), split by data.split"
# what a mistyped entity leaves in the text: `](` or `]{`, maybe with spaces between
_HALF_WRITTEN = re.compile(r"\]\s*[({]")
_ENTITY = re.compile(r"\[([^\]]+)\](?:\(([^)]+)\)|(\{[^}]*\})|(\[[^\]]*\]))")
_SUFFIXES = (".yml", ".yaml")
_SHOWN = 5  # names listed in a summary line


def _yaml_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(path).parts))


def _has_nlu(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8-sig") as f:
            return any(line.startswith("nlu:") for line in f)
    except (OSError, UnicodeDecodeError):
        return False


def detect(path: Path) -> bool:
    if path.is_file():
        return path.suffix in _SUFFIXES and _has_nlu(path)
    return path.is_dir() and any(_has_nlu(p) for p in _yaml_files(path))


@dataclass
class _Found:
    """What a project holds beside examples, summarised once for all its files."""

    lookups: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    synonyms: list[str] = field(default_factory=list)  # tables, `[words](entity:value)`s
    regexes: list[str] = field(default_factory=list)
    groups: int = 0  # entities that carry a group


def read(path: Path, options: ReadOptions, issues: Issues, splits: tuple[str, ...] = SPLITS,
         optional: tuple[str, ...] = ()) -> dict[str, list[Example]]:
    files = [p for p in _yaml_files(path) if _has_nlu(p)]
    if not files:
        issues.error(f"{path}: no YAML file with an `nlu:` section")
        return {split: [] for split in splits}
    if path.is_dir():
        _say_what_is_left_out(path, files, issues)
    found = _Found()
    examples: list[Example] = []
    for file in files:
        examples += read_file(file, options, issues, found) or []
    _say_what_was_found(path, found, examples, issues)
    if not examples:
        if not issues.unreadable:
            tables = ", ".join(found.lookups) or "none"
            issues.error(f"{path}: no intent examples (lookup tables: {tables}); point "
                         "data.path at the directory that holds the intents as well")
        return {split: [] for split in splits}
    return split_unsplit(path, examples, options, issues, splits)


def read_file(path: Path, options: ReadOptions, issues: Issues,
              found: _Found) -> list[Example] | None:
    """The examples of one YAML file; lookups, synonyms and the like go to `found`."""
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
        kind = next((k for k in ("intent", "synonym", "regex", "lookup")
                     if _value(item, k) is not None), None)
        name, block = _value(item, kind) if kind else None, _value(item, "examples")
        if kind is None or not isinstance(name, yaml.ScalarNode):
            issues.error(f"{path}:{item.start_mark.line + 1}: expected an `intent:`, "
                         "`synonym:`, `regex:` or `lookup:` item")
            continue
        entries = _example_lines(block, path, item.start_mark.line + 1, issues)
        if kind == "synonym":
            found.synonyms.append(name.value)
        elif kind == "regex":
            found.regexes.append(name.value)
        elif kind == "lookup":
            found.lookups.setdefault(name.value, []).extend(
                tuple(t.norm for t in tokenize(text, mode=options.tokenizer, corpus=True))
                for _, text in entries)
        else:
            for line, text in entries:
                example = _example(text, name.value, f"{path}:{line}", options, issues,
                                   found)
                if example is not None:
                    examples.append(example)
    return examples


def _value(node, key: str):
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if isinstance(k, yaml.ScalarNode)
                 and k.value == key), None)


def _example_lines(block, path: Path, item_line: int, issues: Issues
                   ) -> list[tuple[int, str]]:
    """(line, text) of each example of an item: `examples: |` with one `- text` line
    each, or a list of `- text: ...` (with `metadata:`) mappings."""
    if isinstance(block, yaml.SequenceNode):  # examples with metadata
        texts = [_value(entry, "text") for entry in block.value]
        if not all(isinstance(t, yaml.ScalarNode) for t in texts):
            issues.error(f"{path}:{item_line}: each of a list of examples is a "
                         "`- text: ...` mapping")
            return []
        return [(t.start_mark.line + 1 + (t.style in ("|", ">")), t.value.strip())
                for t in texts if t.value.strip()]
    if not isinstance(block, yaml.ScalarNode):
        issues.error(f"{path}:{item_line}: an item needs `examples: |` with one "
                     "`- example` line each")
        return []
    first = block.start_mark.line + (1 if block.style in ("|", ">") else 0)
    found = []
    for offset, line in enumerate(block.value.split("\n")):
        text = line.strip()
        if not text:
            continue
        if not text.startswith("-"):
            issues.error(f"{path}:{first + offset + 1}: expected an example line starting "
                         f"with `- `, got {text!r}")
            continue
        found.append((first + offset + 1, text[1:].strip()))
    return found


def _example(marked: str, intent: str, where: str, options: ReadOptions, issues: Issues,
             found: _Found) -> Example | None:
    text_parts: list[str] = []
    spans: list[Span] = []
    position = last = 0
    for match in _ENTITY.finditer(marked):
        before = marked[last:match.start()]
        text_parts.append(before)
        position += len(before)
        words, plain, attributes, several = match.groups()
        slots = _slots(plain, attributes or several, words, where, issues, found)
        if slots is None:
            return None
        spans += [Span(position, position + len(words), slot) for slot in slots]
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


def _slots(plain: str | None, attributes: str | None, words: str, where: str,
           issues: Issues, found: _Found) -> list[str] | None:
    """`city`, `city:value` (a synonym), {"entity": "city", "role": "destination"} or a
    list of such objects -> slot names."""
    if plain is not None:
        entity, colon, _ = plain.partition(":")
        if colon:
            found.synonyms.append(f"[{words}]({plain})")
        return [entity.strip()]
    try:
        fields = json.loads(attributes)
    except json.JSONDecodeError as exc:
        issues.error(f"{where}: entity attributes {attributes} are not valid JSON "
                     f"({exc.msg})")
        return None
    entities = fields if isinstance(fields, list) else [fields]
    if not entities or not all(isinstance(f, dict) and isinstance(f.get("entity"), str)
                               for f in entities):
        issues.error(f"{where}: entity attributes {attributes} need an \"entity\" name")
        return None
    slots = []
    for f in entities:
        found.groups += "group" in f
        if "value" in f:
            found.synonyms.append(f"[{words}]{json.dumps(f, ensure_ascii=False)}")
        role = f.get("role")
        slots.append(f["entity"] + (f".{role}" if isinstance(role, str) and role else ""))
    return slots


def _say_what_is_left_out(root: Path, read: list[Path], issues: Issues) -> None:
    others = [p for p in _yaml_files(root) if p not in read]
    markdown = sorted(p for p in root.rglob("*.md") if _markdown_nlu(p))
    if others:
        issues.warn(f"{root}: {len(read)} file{'s' if len(read) > 1 else ''} with an nlu: "
                    "section read; "
                    f"{_listed([str(p.relative_to(root)) for p in others])} left out "
                    "(no nlu: section: rules, stories, domain and config are not training "
                    "examples)")
    if markdown:
        issues.warn(f"{root}: Rasa 1.x Markdown files not read: "
                    f"{_listed([str(p.relative_to(root)) for p in markdown])} (convert "
                    "them with `rasa data convert nlu -f yaml`)")


def _markdown_nlu(path: Path) -> bool:
    try:
        return "## intent:" in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _say_what_was_found(root: Path, found: _Found, examples: list[Example],
                        issues: Issues) -> None:
    """One line for each kind of thing beside the examples (see the module docstring)."""
    slots = {kind for e in examples for kind in (split_tag(t)[1] for t in e.tags) if kind}
    used = {slot_name(name): entries for name, entries in found.lookups.items()
            if any(s == slot_name(name) or s.startswith(slot_name(name) + ".")
                   for s in slots)}
    issues.gazetteers.update(used)
    if used:
        issues.warn(f"{root}: lookup tables used as gazetteers (each word gets features "
                    "from their entries): " + ", ".join(f"{name} ({len(entries)} entries)"
                                                        for name, entries in used.items()))
    unused = [name for name in found.lookups if slot_name(name) not in used]
    if unused:
        issues.warn(f"{root}: lookup tables naming no entity of the examples skipped: "
                    f"{_listed(unused)}")
    if found.synonyms:
        issues.warn(f"{root}: synonyms not used (slot filling tags the words as written; "
                    f"it does not map them to values): {_listed(found.synonyms)}")
    if found.regexes:
        issues.warn(f"{root}: regex tables skipped (patterns, not words to tag): "
                    f"{_listed(found.regexes)}")
    if found.groups:
        issues.warn(f"{root}: {found.groups} entities carry a group; groups link entities "
                    "and are no slots: ignored")


def _listed(names: list[str]) -> str:
    counted = Counter(names)
    shown = [n + (f" (x{c})" if c > 1 else "") for n, c in list(counted.items())[:_SHOWN]]
    more = len(counted) - _SHOWN
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")
