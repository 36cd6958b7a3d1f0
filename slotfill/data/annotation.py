"""Annotations -> examples: tokens with one tag each (ATIS, CoNLL, token JSON Lines),
and character-offset spans (jsonl, doccano, Label Studio, MASSIVE, SLURP, Rasa).

Tokens as a file writes them are normalised as predict normalises text, and a token of a
script written without spaces is cut into characters (data.tokenizer), its tag spread
over them in its scheme (`B-x` -> `B-x I-x`, `S-x` -> `B-x E-x`), so that training sees
what predict will see.

For spans, the text is split by the same tokeniser as predict (data/tokenize.py), and a
span must cover whole tokens. Where an annotation is imperfect but what was meant is
clear, it is repaired, each repair a warning naming file and line (an error with
data.strict):
- a span that ends inside a word only because of a clitic or possessive after it (`'s`,
  `'`, `n't`, `'ll`, `'re`, `'ve`, `'d`, `'m`, with any apostrophe look-alike such as `’`)
  keeps its words, and the clitic becomes a token of its own: `[Steven Carter](name)'s`
  -> `steven carter 's`, tagged `B-name I-name O` (predict splits such a word the same
  way when the model knows the clitic and not the word)
- a span that cuts a word otherwise is widened to the whole word
- spaces or punctuation at a span's edges are left out of it
- a span given twice is kept once
- a span outside its text, empty (start = end), reversed, covering no word, or with a
  label that has no letter or digit is dropped (the utterance stays)
- a span that overlaps one kept already is dropped: the span that starts first is kept,
  the longer of two that start together
- a label that is not a usable slot name is renamed by SLOT_NAME_RULE, said once with
  the whole mapping: `Candidate name` -> `Candidate_name`
What cannot be read (offsets that are not integers, a label that is not a string) is an
error naming file and line.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from slotfill.data.bio import extract_spans, spread_tag
from slotfill.data.example import Example, Issues, Written
from slotfill.data.tokenize import (
    CLITICS,
    PUNCTUATION,
    Token,
    join_written,
    normalise,
    split_written,
    tokenize,
)

SLOT_NAME_RULE = ("each run of characters other than letters, digits, '.', '_' and '-' "
                  "becomes '_', none at either end")
_NOT_IN_NAMES = re.compile(r"[^\w.\-]+")
_SPACE = re.compile(r"\s")


def token_example(words: list[str], tags: list[str], intent: str | None, where: str,
                  tokenizer: str) -> Example:
    """The example of tokens with their tags, as a token format wrote them."""
    joined = "".join(words)
    if joined.isascii() and tokenizer != "characters" and all(words) \
            and not _SPACE.search(joined):  # most corpora: nothing to cut or normalise
        text = " ".join(words)
        offsets, position = [], 0
        for word in words:
            offsets.append((position, position + len(word)))
            position += len(word) + 1
        return Example(tuple(text.lower().split(" ")), tuple(tags), intent, where,
                       Written(text, tuple(offsets)))
    tokens: list[str] = []
    spread: list[str] = []
    pieces: list[str] = []
    for word, tag in zip(words, tags):
        parts = split_written(word, tokenizer)
        tokens += [p.norm for p in parts]
        pieces += [p.text for p in parts]
        spread += spread_tag(tag, len(parts))
    text, offsets = join_written(pieces)
    return Example(tuple(tokens), tuple(spread), intent, where, Written(text, tuple(offsets)))


class Span(NamedTuple):
    start: int
    end: int
    label: str


@functools.lru_cache(maxsize=4096)
def slot_name(label: str) -> str:
    """A label as a slot name (SLOT_NAME_RULE): `Candidate name` -> `Candidate_name`."""
    return _NOT_IN_NAMES.sub("_", label).strip("_")


def check_span(start, end, label, text: str, where: str, issues: Issues) -> Span | None:
    """A span's fields as read from a file: the span to place (its label a slot name), or
    None when it is unreadable (an error) or dropped (a repair)."""
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        issues.error(f"{where}: span offsets must be integers, got {start!r}, {end!r}")
        return None
    if not isinstance(label, str):
        issues.error(f"{where}: span {start}-{end} has the label {label!r}; a label is a "
                     "string")
        return None
    name = slot_name(label)
    if start < 0 or end > len(text):
        problem = (f"lies outside the text, which has {len(text)} characters (offsets "
                   "count characters from 0; end is exclusive)")
    elif start >= end:
        problem = "is empty" if start == end else "ends before it starts"
    elif not name:
        problem = f"has the label {label!r}, with no letter or digit"
    else:
        if name != label:
            issues.renamed.setdefault(label, (name, where))
        return Span(start, end, name)
    issues.repair(f"{where}: span {start}-{end} ({label}) {problem}; span dropped")
    return None


def annotated_example(text: str, spans: list, intent: str | None, where: str,
                      tokenizer: str, issues: Issues) -> Example | None:
    """The example of `text` with `spans` ((start, end, label) as read; checked and
    repaired: see the module docstring); None when a hard problem was reported."""
    before = issues.unreadable
    checked = [check_span(*span, text, where, issues) for span in spans]
    if issues.unreadable > before:
        return None
    tokens = tokenize(text, mode=tokenizer, corpus=True)
    if not tokens:
        issues.warn(f"{where}: empty text skipped")
        return None
    ordered = _distinct([s for s in checked if s is not None], where, issues)
    ends = {t.end for t in tokens}
    for span in ordered:
        if span.end not in ends:  # inside a word, or after spaces (a rare case: look)
            tokens = _split_clitic(tokens, span, text, where, issues)
            ends = {t.end for t in tokens}
    tags = ["O"] * len(tokens)
    owner: dict[int, Span] = {}  # token -> the span that tagged it
    for span in ordered:
        shown = f"span {span.start}-{span.end} {text[span.start:span.end]!r} ({span.label})"
        touched = [i for i, t in enumerate(tokens) if t.start < span.end and span.start < t.end]
        inside = [i for i in touched
                  if span.start <= tokens[i].start and tokens[i].end <= span.end]
        widened = touched != inside  # it cuts a word: take the whole word
        cut = tokens[next(i for i in touched if i not in inside)] if widened else None
        inside = touched if widened else inside
        while inside and tokens[inside[-1]].norm in PUNCTUATION:
            inside.pop()
        while inside and tokens[inside[0]].norm in PUNCTUATION:
            inside.pop(0)
        if not inside:
            issues.repair(f"{where}: {shown} covers no word; span dropped")
            continue
        first, last = tokens[inside[0]], tokens[inside[-1]]
        taken = next((owner[i] for i in range(inside[0], inside[-1] + 1) if i in owner), None)
        if taken is not None:
            issues.repair(f"{where}: {shown} overlaps span {taken.start}-{taken.end} "
                          f"{text[taken.start:taken.end]!r} ({taken.label}); span dropped "
                          "(a word has one slot: the span that starts first is kept)")
            continue
        repaired = f"repaired to {first.start}-{last.end} {text[first.start:last.end]!r}"
        if widened:
            issues.repair(f"{where}: {shown} cuts the word {cut.text!r} ({cut.start}-"
                          f"{cut.end}); {repaired}, whole words")
        elif (first.start, last.end) != (span.start, span.end):
            issues.repair(f"{where}: {shown} has spaces or punctuation at its edges; "
                          f"{repaired}")
        for k, i in enumerate(range(inside[0], inside[-1] + 1)):
            tags[i] = ("B-" if k == 0 else "I-") + span.label
            owner[i] = span
    return Example(tuple(t.norm for t in tokens), tuple(tags), intent, where,
                   Written(text, tuple((t.start, t.end) for t in tokens)))


def _distinct(spans: list[Span], where: str, issues: Issues) -> list[Span]:
    """Spans by start (the longer first where two start together, else in file order),
    a span given twice kept once."""
    ordered: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if span in ordered:
            issues.repair(f"{where}: span {span.start}-{span.end} ({span.label}) is given "
                          "twice; repaired by keeping one")
        else:
            ordered.append(span)
    return ordered


def _split_clitic(tokens: list[Token], span: Span, text: str, where: str,
                  issues: Issues) -> list[Token]:
    """The tokens with the word that `span` ends inside cut in two, when what follows
    the span in that word is a clitic (`Carter|'s`); unchanged otherwise."""
    for i, token in enumerate(tokens):
        if token.start < span.end < token.end:
            rest = text[span.end:token.end]
            if normalise(rest) not in CLITICS:
                return tokens
            issues.repair(f"{where}: span {span.start}-{span.end} "
                          f"{text[span.start:span.end]!r} ({span.label}) ends inside the "
                          f"word {token.text!r}; repaired by making {rest!r} a token of its "
                          "own")
            head = text[token.start:span.end]
            return [*tokens[:i], Token(head, normalise(head), token.start, span.end),
                    Token(rest, normalise(rest), span.end, token.end), *tokens[i + 1:]]
    return tokens


def spans_of(example: Example) -> list[Span]:
    """An example's slots as character spans of its written text (for writers)."""
    offsets = example.written.offsets
    return [Span(offsets[first][0], offsets[last - 1][1], label)
            for label, first, last in extract_spans(example.tags)]
