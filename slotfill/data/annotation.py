"""Annotations -> examples: tokens with one tag each (ATIS, CoNLL, token JSON Lines),
and character-offset spans (jsonl, MASSIVE, Rasa).

Tokens as a file writes them are normalised as predict normalises text, and a token of a
script written without spaces is cut into characters (data.tokenizer), its tag spread
over them in its scheme (`B-x` -> `B-x I-x`, `S-x` -> `B-x E-x`), so that training sees
what predict will see.

For spans, the text is split by the same tokeniser as predict (data/tokenize.py).
The text is split by the same tokeniser as predict (data/tokenize.py). A span must cover
whole tokens: one that cuts a word, overlaps another or lies outside the text is an
error naming file and line. Repairs that cannot change what the annotator meant are
warnings that say what was done: spaces or punctuation at a span's edges are left out of
it, and a span given twice is kept once.
"""

from __future__ import annotations

from typing import NamedTuple

from slotfill.data.bio import extract_spans, spread_tag
from slotfill.data.example import Example, Issues, Written
from slotfill.data.tokenize import PUNCTUATION, join_written, split_written, tokenize


def token_example(words: list[str], tags: list[str], intent: str | None, where: str,
                  tokenizer: str) -> Example:
    """The example of tokens with their tags, as a token format wrote them."""
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


def check_span(value_start, value_end, label, text: str, where: str,
               issues: Issues) -> Span | None:
    """A span's fields as read from a file, validated; None (and an error) if unusable."""
    if not all(isinstance(v, int) and not isinstance(v, bool)
               for v in (value_start, value_end)):
        issues.error(f"{where}: span offsets must be integers, got "
                     f"{value_start!r}, {value_end!r}")
        return None
    if not isinstance(label, str) or not label.strip() or any(c.isspace() for c in label):
        issues.error(f"{where}: span {value_start}-{value_end} has the label {label!r}; "
                     "labels are non-empty and have no spaces")
        return None
    if not 0 <= value_start < value_end <= len(text):
        issues.error(f"{where}: span {value_start}-{value_end} ({label}) lies outside the "
                     f"text, which has {len(text)} characters (offsets count characters "
                     "from 0; end is exclusive)")
        return None
    return Span(value_start, value_end, label)


def annotated_example(text: str, spans: list[Span], intent: str | None, where: str,
                      tokenizer: str, issues: Issues) -> Example | None:
    """The example of `text` with `spans` (checked: see the module docstring); None when
    a hard problem was reported."""
    checked = [check_span(*span, text, where, issues) for span in spans]
    if None in checked:
        return None
    tokens = tokenize(text, mode=tokenizer, corpus=True)
    if not tokens:
        issues.warn(f"{where}: empty text skipped")
        return None
    tags = ["O"] * len(tokens)
    ok = True
    for span in _distinct(checked, text, where, issues):
        inside = [i for i, t in enumerate(tokens) if span.start <= t.start and t.end <= span.end]
        cut = [t for t in tokens if t.start < span.start < t.end or t.start < span.end < t.end]
        shown = f"span {span.start}-{span.end} {text[span.start:span.end]!r} ({span.label})"
        if cut:
            ok = False
            issues.error(f"{where}: {shown} cuts the word {cut[0].text!r} "
                         f"({cut[0].start}-{cut[0].end}); spans must cover whole words as "
                         f"the tokeniser splits them (data.tokenizer={tokenizer})")
            continue
        while inside and tokens[inside[-1]].norm in PUNCTUATION:
            inside.pop()
        while inside and tokens[inside[0]].norm in PUNCTUATION:
            inside.pop(0)
        if not inside:
            ok = False
            issues.error(f"{where}: {shown} covers no word")
            continue
        first, last = tokens[inside[0]], tokens[inside[-1]]
        if (first.start, last.end) != (span.start, span.end):
            issues.warn(f"{where}: {shown} has spaces or punctuation at its edges; "
                        f"repaired to {first.start}-{last.end} "
                        f"{text[first.start:last.end]!r}")
        for k, i in enumerate(range(inside[0], inside[-1] + 1)):
            tags[i] = ("B-" if k == 0 else "I-") + span.label
    if not ok:
        return None
    return Example(tuple(t.norm for t in tokens), tuple(tags), intent, where,
                   Written(text, tuple((t.start, t.end) for t in tokens)))


def _distinct(spans: list[Span], text: str, where: str, issues: Issues) -> list[Span]:
    """Spans in order, a repeated span kept once (warned); overlapping ones reported."""
    ordered: list[Span] = []
    for span in sorted(spans):
        if ordered and span == ordered[-1]:
            issues.warn(f"{where}: span {span.start}-{span.end} ({span.label}) is given "
                        "twice; repaired by keeping one")
        elif ordered and span.start < ordered[-1].end:
            prev = ordered[-1]
            issues.error(f"{where}: spans {prev.start}-{prev.end} "
                         f"{text[prev.start:prev.end]!r} ({prev.label}) and "
                         f"{span.start}-{span.end} {text[span.start:span.end]!r} "
                         f"({span.label}) overlap; a word has one slot")
        else:
            ordered.append(span)
    return ordered


def spans_of(example: Example) -> list[Span]:
    """An example's slots as character spans of its written text (for writers)."""
    offsets = example.written.offsets
    return [Span(offsets[first][0], offsets[last - 1][1], label)
            for label, first, last in extract_spans(example.tags)]
