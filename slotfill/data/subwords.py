"""Sub-word pieces for a transformer encoder (model.transformer): the pretrained model's
own tokenizer, kept inside the checkpoint as its `tokenizer.json` text, with the model's
configuration, so that a run loads offline and never looks for the source again.

Words come already split (the corpus's tokens, or data/tokenize.py's at predict time);
each is split into pieces by the Hugging Face `tokenizers` library (no torch, no
`transformers` import: start-up stays fast) and the utterance is framed with the
model's special tokens ([CLS] ... [SEP] for BERT). A word that gives no piece (a
control character) reads as the unknown piece, so that every word has a first piece.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

from slotfill.errors import ConfigError


class Subwords:
    """The tokenizer and configuration of a pretrained transformer."""

    def __init__(self, tokenizer_json: str, model_config: dict, source: str,
                 digest: str | None = None) -> None:
        self.tokenizer_json, self.model_config = tokenizer_json, model_config
        self.source, self.digest = source, digest  # where it came from, weights' sha256

    @cached_property
    def tokenizer(self):
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise ConfigError("This model's encoder is a transformer, which needs the "
                              "`tokenizers` and `transformers` packages",
                              'install them with: pip install "slotfill[transformers]"'
                              ) from None
        tokenizer = Tokenizer.from_str(self.tokenizer_json)
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    @property
    def max_pieces(self) -> int:
        return int(self.model_config.get("max_position_embeddings", 512))

    @cached_property
    def unk_id(self) -> int:
        for name in ("[UNK]", "<unk>", "<UNK>"):
            found = self.tokenizer.token_to_id(name)
            if found is not None:
                return found
        return 0

    def encode(self, words: Sequence[str]) -> tuple[list[int], list[int]]:
        """Piece ids of one utterance, framed by the special tokens, and the position of
        each word's first piece. Past the model's length limit the pieces are cut and
        the words beyond read the last piece kept."""
        encoding = self.tokenizer.encode(list(words), is_pretokenized=True)
        ids, owners = list(encoding.ids), encoding.word_ids
        first: list[int | None] = [None] * len(words)
        for position, word in enumerate(owners):
            if word is not None and first[word] is None:
                first[word] = position
        missing = [w for w, p in enumerate(first) if p is None]
        if missing:  # words without a piece: give each the unknown piece, in order
            ids, first = self._with_unknown(ids, owners, missing, len(words))
        limit = self.max_pieces
        if len(ids) > limit:
            ids = ids[:limit - 1] + ids[-1:]  # keep the closing special token
            first = [min(p, limit - 2) for p in first]
        return ids, first

    def _with_unknown(self, ids: list[int], owners: list[int | None], missing: list[int],
                      count: int) -> tuple[list[int], list[int]]:
        """Rebuild the pieces with one unknown piece for each word that had none."""
        by_word: dict[int, list[int]] = {}
        for piece, word in zip(ids, owners):
            if word is not None:
                by_word.setdefault(word, []).append(piece)
        lead = [p for p, w in zip(ids, owners) if w is None][:1]  # [CLS]
        tail = [p for p, w in zip(ids, owners) if w is None][1:]  # [SEP]
        if owners and owners[0] is not None:  # no opening special token
            tail, lead = lead + tail, []
        out, first = list(lead), []
        for word in range(count):
            first.append(len(out))
            out.extend(by_word.get(word) or [self.unk_id])
        return out + tail, first

    def to_dict(self) -> dict:
        return {"tokenizer_json": self.tokenizer_json, "model_config": self.model_config,
                "source": self.source, "digest": self.digest}

    @classmethod
    def from_dict(cls, data: dict) -> Subwords:
        return cls(data["tokenizer_json"], data["model_config"], data["source"],
                   data.get("digest"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Subwords) and self.to_dict() == other.to_dict()
