"""The BIO tag scheme, in one place: what a tag means and which tag may follow which.

A tag is split at its first '-' into a prefix (B, I, E, O, ...) and a slot type
(`B-toloc.city_name` -> `B`, `toloc.city_name`; `O` -> `O`, ``). Chunks are delimited
exactly as the conlleval script delimits them: an ill-formed `I-x` without a `B-x` starts
a new chunk. BIO itself allows `I-x` only after `B-x` or `I-x`. Metrics, the CRF's
transition mask, `slotfill data check`, predict and serve all read tags through here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

Span = tuple[str, int, int]  # (type, start, end) with `end` exclusive, in tokens


@functools.lru_cache(maxsize=4096)
def split_tag(tag: str) -> tuple[str, str]:
    """'B-toloc.city_name' -> ('B', 'toloc.city_name'); 'O' -> ('O', '')."""
    prefix, dash, kind = tag.partition("-")
    return (prefix, kind) if dash else (tag, "")


def may_follow(previous: str | None, tag: str) -> bool:
    """Whether BIO allows `tag` after `previous` (None: at the start of an utterance):
    an `I-x` only continues a `B-x` or `I-x`; every other tag may go anywhere."""
    prefix, kind = split_tag(tag)
    if prefix != "I":
        return True
    if previous is None:
        return False
    prev_prefix, prev_kind = split_tag(previous)
    return prev_prefix in ("B", "I") and prev_kind == kind


def slot_types(tags: Iterable[str]) -> list[str]:
    """The slot types of a tag set, in first-seen order (`O` and `<...>` have none)."""
    return list(dict.fromkeys(kind for kind in (split_tag(t)[1] for t in tags) if kind))


def bio_problems(tags: Sequence[str]) -> list[str]:
    """Where a sequence breaks BIO: `token 3: I-x after O`, one line per position."""
    return [f"token {i + 1}: {tag} after {tags[i - 1] if i else 'the start'}"
            for i, tag in enumerate(tags) if not may_follow(tags[i - 1] if i else None, tag)]


def _end_of_chunk(prev: str, tag: str, prev_type: str, kind: str) -> bool:
    # conlleval's endOfChunk, rule for rule
    return ((prev in ("B", "I") and tag in ("B", "O"))
            or (prev == "E" and tag in ("E", "I", "O"))
            or (prev not in ("O", ".") and prev_type != kind)
            or prev in ("[", "]"))


def _start_of_chunk(prev: str, tag: str, prev_type: str, kind: str) -> bool:
    # conlleval's startOfChunk, rule for rule
    return ((tag == "B" and prev in ("B", "I", "O"))
            or (tag == "I" and prev in ("O", "E"))
            or (tag == "E" and prev in ("E", "O"))
            or (tag not in ("O", ".") and prev_type != kind)
            or tag in ("[", "]"))


def extract_spans(tags: Sequence[str]) -> list[Span]:
    """The chunks of one utterance, as conlleval delimits them."""
    spans: list[Span] = []
    prev, prev_type, start = "O", "", None
    for i, tag in enumerate([*tags, "O"]):  # a trailing O closes the last chunk
        prefix, kind = split_tag(tag)
        if start is not None and _end_of_chunk(prev, prefix, prev_type, kind):
            spans.append((prev_type, start, i))
            start = None
        if i < len(tags) and _start_of_chunk(prev, prefix, prev_type, kind):
            if start is not None:  # conlleval counts every start; close what is open
                spans.append((prev_type, start, i))
            start = i
        prev, prev_type = prefix, kind
    return spans


def spans_to_tags(spans: Iterable[Span], length: int) -> list[str]:
    """BIO tags of `length` tokens holding the given non-overlapping spans."""
    tags = ["O"] * length
    for kind, start, end in spans:
        tags[start:end] = [f"B-{kind}"] + [f"I-{kind}"] * (end - start - 1)
    return tags
