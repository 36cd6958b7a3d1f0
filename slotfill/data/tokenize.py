"""Raw text -> tokens with character offsets, the way ATIS-style corpora are tokenised.

Used by predict and serve for raw text, by the readers of span-annotated corpora, and
described to ONNX runtimes by `describe()`, so every consumer splits text the same way.
"""

from __future__ import annotations

import re
from collections.abc import Container
from typing import NamedTuple

PUNCTUATION = frozenset(',!?";:()[]{}')
# Unicode look-alikes typed by phones and word processors, each replaced by the ASCII
# character corpora use (one character for one, so offsets stay exact).
LOOKALIKES = {
    "\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'", "\u02bc": "'", "\uff07": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"', "\uff02": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u00a0": " ", "\u2007": " ", "\u202f": " ",
}
_TRANSLATION = str.maketrans(LOOKALIKES)
_CHUNK = re.compile(r"\S+")
_NEEDS_SPLIT = re.compile(f"[{re.escape(''.join(sorted(PUNCTUATION)))}]|\\.$")  # or a final dot


class Token(NamedTuple):
    text: str  # as written in the input
    norm: str  # the form the model reads (look-alikes replaced, lowercased)
    start: int  # character offsets into the input: text == input[start:end]
    end: int


def normalise(text: str) -> str:
    """Unicode look-alikes (curly quotes, dashes, no-break spaces) as ASCII; same length."""
    return text.translate(_TRANSLATION)


def tokenize(text: str, known: Container[str] = frozenset()) -> list[Token]:
    """Split raw text the way ATIS-style corpora are tokenised.

    Replace Unicode look-alikes by their ASCII forms (`o’clock` reads as `o'clock`) and
    lowercase; split at whitespace; split the punctuation characters in `punctuation` off
    the start and end of each chunk, one token each, and drop them unless the model's
    vocabulary (`known`) has them (ATIS has none, so a model has never seen them); split a
    word's trailing dots off unless the vocabulary has the dotted form (`st.` stays,
    `nov.` becomes `nov`), dropped like punctuation; keep apostrophes inside words
    (`i'd`, `o'clock`).
    """
    tokens: list[Token] = []
    for match in _CHUNK.finditer(normalise(text)):
        chunk, offset = match.group(), match.start()
        if not _NEEDS_SPLIT.search(chunk):  # the common case: a plain word
            tokens.append(Token(text[offset:match.end()], chunk.lower(), offset, match.end()))
            continue
        lo, hi = 0, len(chunk)
        while lo < hi and chunk[lo] in PUNCTUATION:
            lo += 1
        while hi > lo and chunk[hi - 1] in PUNCTUATION:
            hi -= 1
        word_end = hi
        while word_end > lo and chunk[word_end - 1] == "." \
                and chunk[lo:word_end].lower() not in known:
            word_end -= 1
        pieces = [(i, i + 1) for i in range(lo)]  # leading punctuation, one token each
        if word_end > lo:
            pieces.append((lo, word_end))
        pieces += [(i, i + 1) for i in range(word_end, len(chunk))]  # dots and punctuation
        for start, end in pieces:
            piece = chunk[start:end].lower()
            if (start, end) == (lo, word_end) or piece in known:
                tokens.append(Token(text[offset + start:offset + end], piece,
                                    offset + start, offset + end))
    return tokens


def describe() -> dict:
    """The tokenisation, for runtimes that reimplement it (ONNX export)."""
    return {"replace": dict(LOOKALIKES), "lowercase": True,
            "punctuation": sorted(PUNCTUATION),
            "rules": " ".join(tokenize.__doc__.split("\n\n", 1)[1].split())}
