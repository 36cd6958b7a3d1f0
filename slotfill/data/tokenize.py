"""Raw text -> tokens with character offsets, for any script.

Used by predict and serve for raw text, by the readers of corpora (span formats are
tokenised here; token formats have their tokens normalised and split by script here),
and described to ONNX runtimes by `describe()`, so every consumer splits text the same
way. The tokenizer (`data.tokenizer`) is saved with every model.

Normalisation works on clusters (a character and the marks after it: accents, vowel signs): each
cluster is replaced by its NFKC form, case-folded, with Unicode look-alikes as ASCII,
so that a token's normalised form is the concatenation of its clusters' forms and its
offsets always point at whole clusters of the original text, whatever the script and
however NFKC changes lengths (`ﬁ` -> `fi`, `①` -> `1`, `ß` -> `ss`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container
from typing import NamedTuple

TOKENIZERS = ("auto", "whitespace", "characters")
# ASCII punctuation and the CJK marks NFKC keeps (full-width `，？！：（` become ASCII)
PUNCTUATION = frozenset(',!?";:()[]{}' + "。、「」『』【】《》〈〉〔〕・")
# Unicode look-alikes typed by phones and word processors, each replaced by the ASCII
# character corpora use (NFKC leaves these alone).
LOOKALIKES = {
    "\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'", "\u02bc": "'", "\uff07": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"', "\uff02": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u00a0": " ", "\u2007": " ", "\u202f": " ",
}
_TRANSLATION = str.maketrans(LOOKALIKES)
# English clitics and possessives, normalised (`’s` reads as `'s`): a corpus may make
# them tokens of their own (data/annotation.py), and predict then splits them off too
CLITICS = ("n't", "'ll", "'re", "'ve", "'s", "'d", "'m", "'")
# Scripts written without spaces between words: `auto` makes each character a token
# (as MASSIVE's baselines do for Chinese and Japanese).
UNSPACED_SCRIPTS = (
    (0x0E00, 0x0EFF, "Thai, Lao"), (0x1000, 0x109F, "Myanmar"), (0x1780, 0x17FF, "Khmer"),
    (0x2E80, 0x2FDF, "CJK radicals"), (0x3000, 0x303F, "CJK symbols and punctuation"),
    (0x3040, 0x30FF, "Hiragana, Katakana"), (0x3100, 0x312F, "Bopomofo"),
    (0x31F0, 0x31FF, "Katakana extensions"), (0x3400, 0x4DBF, "CJK extension A"),
    (0x4E00, 0x9FFF, "CJK unified ideographs"), (0xF900, 0xFAFF, "CJK compatibility"),
    (0x20000, 0x3FFFF, "CJK extensions B and later"),
)


_UNSPACED = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi, _ in UNSPACED_SCRIPTS)
                       + "]")


_CHUNK = re.compile(r"[^ \t\n\r\x0b\x0c\x1c-\x1f]+")  # between ASCII whitespace
_NEEDS_SPLIT = re.compile(f"[{re.escape(''.join(sorted(PUNCTUATION)))}]|\\.$")


class Token(NamedTuple):
    text: str  # as written in the input
    norm: str  # the form the model reads (NFKC, case-folded, look-alikes replaced)
    start: int  # character offsets into the input: text == input[start:end]
    end: int


class _Cluster(NamedTuple):
    start: int
    end: int
    norm: str  # never contains whitespace; "" for a space


def unspaced(char: str) -> bool:
    """Whether `char` belongs to a script written without spaces between words."""
    return _UNSPACED.match(char) is not None


def _is_mark(char: str) -> bool:
    """A combining mark (accents, Thai and Indic vowel signs): part of the cluster before."""
    return unicodedata.category(char)[0] == "M"


def _normalise_cluster(cluster: str) -> str:
    form = unicodedata.normalize("NFKC", cluster.translate(_TRANSLATION)).casefold()
    return "".join(form.split())  # `¨` -> ` ̈`: spaces NFKC adds are not word breaks


def _clusters(text: str) -> list[_Cluster]:
    """The text's clusters with their normalised forms."""
    if text.isascii():  # the common case, 10x faster
        lowered = text.lower()
        return [_Cluster(i, i + 1, "" if c.isspace() else c) for i, c in enumerate(lowered)]
    clusters: list[_Cluster] = []
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or not _is_mark(text[i]) or text[i - 1].isspace():
            clusters.append(_Cluster(start, i, _normalise_cluster(text[start:i])))
            start = i
    return clusters


def normalise(word: str) -> str:
    """A written token's normalised form, as the model reads it."""
    return "".join(c.norm for c in _clusters(word))


def tokenize(text: str, known: Container[str] = frozenset(), mode: str = "auto",
             corpus: bool = False) -> list[Token]:
    """Split raw text the way corpora are tokenised.

    Normalise each character (NFKC, case folding, Unicode look-alikes such as curly
    quotes as ASCII, so `o’clock` reads as `o'clock`); split at whitespace; with the
    `auto` tokenizer, make each character of a script written without spaces (Chinese,
    Japanese, Thai, ...) a token of its own, keeping runs of other characters (Latin
    words, digits) whole; with `characters`, make every character a token. Split the
    punctuation characters in `PUNCTUATION` off the start and end of each word, one token
    each, and drop them unless the model's vocabulary (`known`) has them (ATIS has none,
    so a model has never seen them); split a word's trailing dots off unless the
    vocabulary has the dotted form (`st.` stays, `nov.` becomes `nov`), dropped like
    punctuation; keep apostrophes inside words (`i'd`, `o'clock`), except that a word
    the vocabulary lacks, ending in a clitic in `CLITICS` that the vocabulary has, is two
    tokens (`carter's` -> `carter`, `'s`). Reading a corpus (`corpus`), punctuation is
    kept and dotted words keep their dots except at the end.
    """
    if mode not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {mode!r}; valid: {', '.join(TOKENIZERS)}")
    clitics = () if corpus else tuple(c for c in CLITICS if c in known)
    if text.isascii() and mode != "characters":
        return _tokenize_ascii(text, known, corpus, clitics)
    words: list[list[_Cluster]] = [[]]
    for cluster in _clusters(text):  # whitespace-delimited chunks
        if cluster.norm:
            words[-1].append(cluster)
        elif words[-1]:
            words.append([])
    words = [w for w in words if w]
    if mode == "characters" or (mode == "auto" and not text.isascii()):
        words = [piece for chunk in words for piece in _script_pieces(chunk, mode)]
    tokens: list[Token] = []
    for i, word in enumerate(words):
        tokens += _split_word(text, word, known, corpus, final=i == len(words) - 1,
                              clitics=clitics)
    return tokens


def _tokenize_ascii(text: str, known: Container[str], corpus: bool,
                    clitics: tuple[str, ...]) -> list[Token]:
    """The same for ASCII text (most requests), 5x faster: words are split only when
    they hold punctuation, end in a dot, or (with clitics known) hold an apostrophe."""
    lowered = text.lower()
    chunks = list(_CHUNK.finditer(lowered))
    tokens: list[Token] = []
    for i, match in enumerate(chunks):
        start, end = match.span()
        if not _NEEDS_SPLIT.search(match.group()) and not (clitics and "'" in match.group()):
            tokens.append(Token(text[start:end], match.group(), start, end))
        else:
            word = [_Cluster(j, j + 1, lowered[j]) for j in range(start, end)]
            tokens += _split_word(text, word, known, corpus, final=i == len(chunks) - 1,
                                  clitics=clitics)
    return tokens


def _script_pieces(chunk: list[_Cluster], mode: str) -> list[list[_Cluster]]:
    """A whitespace-delimited chunk cut where the tokenizer cuts inside words."""
    if mode == "whitespace":
        return [chunk]
    if mode == "characters":
        return [[c] for c in chunk]
    if not _UNSPACED.search("".join(c.norm for c in chunk)):
        return [chunk]
    pieces: list[list[_Cluster]] = []
    run: list[_Cluster] = []
    for cluster in chunk:
        if unspaced(cluster.norm[0]):
            if run:
                pieces.append(run)
                run = []
            pieces.append([cluster])
        else:
            run.append(cluster)
    return pieces + ([run] if run else [])


def _split_word(text: str, word: list[_Cluster], known: Container[str], corpus: bool,
                final: bool, clitics: tuple[str, ...] = ()) -> list[Token]:
    """One word's tokens: leading and trailing punctuation and trailing dots split off
    (kept when known, or when reading a corpus), a known clitic off an unknown word, the
    rest one token."""
    def token(lo: int, hi: int) -> Token:
        return Token(text[word[lo].start:word[hi - 1].end],
                     "".join(c.norm for c in word[lo:hi]), word[lo].start, word[hi - 1].end)

    norms = [c.norm for c in word]
    lo, hi = 0, len(word)
    while lo < hi and norms[lo] in PUNCTUATION:
        lo += 1
    while hi > lo and norms[hi - 1] in PUNCTUATION:
        hi -= 1
    word_end = hi
    if corpus:  # a corpus's own dotted words keep their dots, except at its very end
        while final and word_end > lo and norms[word_end - 1] == ".":
            word_end -= 1
    else:
        while word_end > lo and norms[word_end - 1] == "." \
                and "".join(norms[lo:word_end]) not in known:
            word_end -= 1
    pieces = [(i, i + 1) for i in range(lo)]  # leading punctuation, one token each
    stem = _clitic_start(norms, lo, word_end, known, clitics)
    if stem > lo:
        pieces += [(lo, stem), (stem, word_end)]
    elif word_end > lo:
        pieces.append((lo, word_end))
    pieces += [(i, i + 1) for i in range(word_end, len(word))]  # dots and punctuation
    return [token(a, b) for a, b in pieces
            if lo <= a and b <= word_end or corpus or "".join(norms[a:b]) in known]


def _clitic_start(norms: list[str], lo: int, hi: int, known: Container[str],
                  clitics: tuple[str, ...]) -> int:
    """Where a known clitic begins in the unknown word norms[lo:hi] (lo if none)."""
    word = "".join(norms[lo:hi])
    if not clitics or "'" not in word or word in known:
        return lo
    for clitic in clitics:
        if word.endswith(clitic) and len(word) > len(clitic):
            tail = ""
            for i in range(hi - 1, lo, -1):  # clusters, since one may normalise to several
                tail = norms[i] + tail
                if tail == clitic:
                    return i
                if len(tail) >= len(clitic):
                    break
    return lo


def split_written(word: str, mode: str) -> list[Token]:
    """A token as a corpus file wrote it, normalised and cut where the tokenizer cuts
    inside words (a Chinese word into characters), never at punctuation; offsets are
    into `word`."""
    if word.isascii() and mode != "characters" and not any(c.isspace() for c in word):
        return [Token(word, word.lower(), 0, len(word))] if word else []
    clusters = [c for c in _clusters(word) if c.norm]
    return [Token(word[p[0].start:p[-1].end], "".join(c.norm for c in p), p[0].start,
                  p[-1].end) for p in _script_pieces(clusters, mode)] if clusters else []


def join_written(words: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Tokens as one text that tokenises back into them, and their offsets in it: a
    space between words, none next to a character of an unspaced script."""
    parts: list[str] = []
    offsets: list[tuple[int, int]] = []
    position = 0
    for i, word in enumerate(words):
        if i and not (len(words[i - 1]) == 1 and unspaced(words[i - 1])
                      or len(word) == 1 and unspaced(word)):
            parts.append(" ")
            position += 1
        parts.append(word)
        offsets.append((position, position + len(word)))
        position += len(word)
    return "".join(parts), offsets


def describe(mode: str = "auto") -> dict:
    """The tokenisation, for runtimes that reimplement it (ONNX export)."""
    return {"tokenizer": mode, "unicode": "NFKC per character and its combining marks, "
            "then case folding (str.casefold), whitespace removed from the result",
            "replace": dict(LOOKALIKES), "lowercase": True,
            "punctuation": sorted(PUNCTUATION), "clitics": list(CLITICS),
            "unspaced_scripts": [[lo, hi, name] for lo, hi, name in UNSPACED_SCRIPTS]
            if mode == "auto" else [],
            "rules": " ".join(tokenize.__doc__.split("\n\n", 1)[1].split())}
