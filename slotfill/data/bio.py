"""Tag schemes, in one place: what a tag means, which tag may follow which, how tags spell
chunks, and how to write chunks in each scheme.

A tag is split at its first '-' into a prefix and a slot type (`B-toloc.city_name` ->
`B`, `toloc.city_name`; `O` -> `O`, ``). Four schemes are known:

    bio    BIO (IOB2)     B- begins every chunk, I- continues it
    iob1   IOB1           I- begins and continues; B- only begins a chunk that directly
                          follows one of the same type (CoNLL-2003 as first published)
    bioes  BIOES (IOBES)  B- begin, I- inside, E- end, S- a chunk of one word
    bilou  BILOU          the same with L- (last) for E- and U- (unit) for S-

BMES, as Chinese NER corpora write BIOES (M- for I-), reads as BIOES.

Chunks are delimited as the conlleval script delimits them, rule for rule, with the two
rules conlleval lacks for schemes that mark a chunk's end (taken from seqeval's default
mode, the conlleval port): an E-/L- tag closes its chunk whatever follows, and an S-/U-
tag is a chunk of its own. For BIO and IOB1 this is conlleval exactly (an ill-formed
`I-x` without a `B-x` starts a chunk); for well-formed BIOES and BILOU the chunks are
those the tags spell. Metrics, the CRF's transition constraints, `slotfill data check`,
`data convert --scheme`, predict and serve all read tags through here.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

Span = tuple[str, int, int]  # (type, start, end) with `end` exclusive, in tokens

SCHEMES = {"bio": "BIO (IOB2)", "iob1": "IOB1", "bioes": "BIOES (IOBES)", "bilou": "BILOU"}
_ALIASES = {"L": "E", "U": "S", "M": "I"}  # BILOU's and BMES's prefixes read as BIOES's
_LAST_AND_SINGLE = {"bioes": ("E", "S"), "bilou": ("L", "U")}  # how each writes E-, S-


@functools.lru_cache(maxsize=4096)
def split_tag(tag: str) -> tuple[str, str]:
    """'B-toloc.city_name' -> ('B', 'toloc.city_name'); 'O' -> ('O', '')."""
    prefix, dash, kind = tag.partition("-")
    return (prefix, kind) if dash else (tag, "")


def _read(tag: str) -> tuple[str, str]:
    """A tag's prefix (BILOU's as BIOES's) and type."""
    prefix, kind = split_tag(tag)
    return _ALIASES.get(prefix, prefix), kind


def slot_types(tags: Iterable[str]) -> list[str]:
    """The slot types of a tag set, in first-seen order (`O` and `<...>` have none)."""
    return list(dict.fromkeys(kind for kind in (split_tag(t)[1] for t in tags) if kind))


# ------------------------------------------------------------------ which scheme

def scheme_of_tags(tags: Iterable[str]) -> str | None:
    """The scheme a tag set's names show (bioes, bilou), or None when it uses only B-, I-
    and O, which BIO and IOB1 share."""
    prefixes = {split_tag(t)[0] for t in tags}
    if prefixes & {"L", "U"} and not prefixes & {"E", "S"}:
        return "bilou"
    return "bioes" if prefixes & {"E", "S", "L", "U", "M"} else None


def detect_scheme(sequences: Iterable[Sequence[str]] | Mapping[Sequence[str], int]) -> str:
    """The scheme of a corpus's tag sequences (or of a mapping from each distinct sequence
    to its count): BIOES or BILOU by their prefixes, else IOB1 when more chunks begin with
    I- than with B- (a chunk beginning after O or another type), else BIO."""
    counted = sequences if isinstance(sequences, Mapping) else Counter(map(tuple, sequences))
    named = scheme_of_tags(t for s in counted for t in s)
    if named is not None:
        return named
    starts = {"B": 0, "I": 0}
    for tags, count in counted.items():
        previous = ("O", "")
        for tag in tags:
            prefix, kind = split_tag(tag)
            if prefix in starts and not (previous[0] in starts and previous[1] == kind):
                starts[prefix] += count
            previous = (prefix, kind)
    return "iob1" if starts["I"] > starts["B"] else "bio"


# ------------------------------------------------------------------ legal transitions

def may_follow(previous: str | None, tag: str, scheme: str = "bio") -> bool:
    """Whether `scheme` allows `tag` after `previous` (None: at the start of an
    utterance). BIO: `I-x` only continues a `B-x` or `I-x`. IOB1: `B-x` only follows a
    `B-x` or `I-x`. BIOES/BILOU: after `B-x` or `I-x` only `I-x` or `E-x`; elsewhere
    only `O`, `B-` or `S-`. Tags of no scheme (no known prefix) go anywhere."""
    prefix, kind = _read(tag)
    before, before_kind = _read(previous) if previous is not None else ("O", "")
    inside = before in ("B", "I")  # an open chunk of type `before_kind`
    if scheme in ("bioes", "bilou"):
        if inside:
            return prefix in ("I", "E") and kind == before_kind
        return prefix not in ("I", "E")
    if scheme == "iob1":
        return prefix != "B" or (inside and kind == before_kind)
    return prefix != "I" or (inside and kind == before_kind)


def may_end(tag: str, scheme: str = "bio") -> bool:
    """Whether an utterance may end with `tag`: BIOES and BILOU close every chunk."""
    return scheme not in ("bioes", "bilou") or _read(tag)[0] not in ("B", "I")


def transition_problems(tags: Sequence[str], scheme: str = "bio") -> list[str]:
    """Where a sequence breaks its scheme: `token 3: I-x after O`, one line each."""
    problems = [f"token {i + 1}: {tag} after {tags[i - 1] if i else 'the start'}"
                for i, tag in enumerate(tags) if not may_follow(tags[i - 1] if i else None,
                                                                tag, scheme)]
    if tags and not may_end(tags[-1], scheme):
        problems.append(f"token {len(tags)}: {tags[-1]} ends the utterance")
    return problems


# ------------------------------------------------------------------ tags -> chunks

def _end_of_chunk(prev: str, tag: str, prev_type: str, kind: str) -> bool:
    # conlleval's endOfChunk, plus: E and S close their chunk, S ends a B/I chunk
    return ((prev in ("B", "I") and tag in ("B", "S", "O"))
            or prev in ("E", "S")
            or (prev not in ("O", ".") and prev_type != kind)
            or prev in ("[", "]"))


def _start_of_chunk(prev: str, tag: str, prev_type: str, kind: str) -> bool:
    # conlleval's startOfChunk, plus: B and S always start one, I or E after S too
    return (tag in ("B", "S")
            or (tag in ("I", "E") and prev in ("O", "E", "S"))
            or (tag not in ("O", ".") and prev_type != kind)
            or tag in ("[", "]"))


def extract_spans(tags: Sequence[str]) -> list[Span]:
    """The chunks of one utterance, in any scheme (see the module docstring)."""
    spans: list[Span] = []
    prev, prev_type, start = "O", "", None
    for i, tag in enumerate([*tags, "O"]):  # a trailing O closes the last chunk
        prefix, kind = _read(tag)
        if start is not None and _end_of_chunk(prev, prefix, prev_type, kind):
            spans.append((prev_type, start, i))
            start = None
        if i < len(tags) and _start_of_chunk(prev, prefix, prev_type, kind):
            if start is not None:  # conlleval counts every start; close what is open
                spans.append((prev_type, start, i))
            start = i
        prev, prev_type = prefix, kind
    return spans


# ------------------------------------------------------------------ chunks -> tags

def spans_to_tags(spans: Iterable[Span], length: int, scheme: str = "bio") -> list[str]:
    """Tags of `length` tokens holding the given non-overlapping spans, in `scheme`."""
    tags = ["O"] * length
    previous_end, previous_kind = None, None
    for kind, start, end in sorted(spans, key=lambda s: s[1]):
        inside = [f"I-{kind}"] * (end - start)
        if scheme in _LAST_AND_SINGLE:
            last, single = _LAST_AND_SINGLE[scheme]
            inside[0] = f"B-{kind}"
            inside[-1] = f"{last}-{kind}" if end - start > 1 else f"{single}-{kind}"
        elif scheme == "bio" or (previous_end == start and previous_kind == kind):
            inside[0] = f"B-{kind}"  # IOB1 needs B- only against a chunk of its type
        tags[start:end] = inside
        previous_end, previous_kind = end, kind
    return tags


def convert_tags(tags: Sequence[str], scheme: str) -> list[str]:
    """The same chunks in another scheme."""
    return spans_to_tags(extract_spans(tags), len(tags), scheme)


def spread_tag(tag: str, pieces: int) -> list[str]:
    """The tags of a word cut into `pieces` tokens (a Chinese word into characters), in
    the word's scheme: `B-x` -> `B-x I-x`, `E-x` -> `I-x E-x`, `S-x` -> `B-x E-x`,
    `U-x` -> `B-x L-x`, `I-x` and `O` repeated."""
    prefix, kind = split_tag(tag)
    if pieces <= 1 or not kind or prefix not in ("B", "I", "E", "S", "L", "U"):
        return [tag] * pieces
    first = "B" if prefix in ("B", "S", "U") else "I"
    last = {"S": "E", "U": "L"}.get(prefix, prefix if prefix in ("E", "L") else "I")
    return [f"{first}-{kind}"] + [f"I-{kind}"] * (pieces - 2) + [f"{last}-{kind}"]
