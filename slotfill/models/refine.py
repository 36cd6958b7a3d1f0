"""The refinement pass (model.refine; SlotRefine, Wu et al. 2020): the tagger runs twice.

The encoder reads, beside each word's representation, an embedding of what the previous
pass decided there: in the first pass "no chunk begins here" at every word, in the
second the slot type of each chunk the first pass began at that word (a B- tag, or an
I- tag that begins a chunk). The second pass's tags and intent are the answer. Like
SlotRefine, only where chunks begin is passed on, not every tag, so the second pass
cannot copy the first: it decides each chunk's extent and every I- tag again, with the
whole utterance's chunks in view, which is where boundary and B/I errors are fixed.

Both passes share every weight and train together (the sum of their losses); the second
reads the first pass's own decoded tags (no gradient through the choice), as it will
when tagging. Only the encoder's input widens, so this works for every encoder and head;
it costs about twice the time to train and to tag.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from slotfill.models.crf import chunk_relations

HINT_SIZE = 32  # the embedding of a chunk start the encoder reads


class ChunkStarts(nn.Module):
    """Where decoded tags begin chunks, and the embedding the next pass reads of it."""

    def __init__(self, tag_names: Sequence[str]) -> None:
        super().__init__()
        continues, kinds = chunk_relations(tag_names)
        # derived from the tag names: not saved, never synced
        self.register_buffer("continues", continues, persistent=False)  # (K, K)
        self.register_buffer("kinds", kinds, persistent=False)  # (K,) -1: outside chunks
        self.none = int(kinds.max()) + 1  # the row for "no chunk begins here"
        self.embedding = nn.Embedding(self.none + 1, HINT_SIZE)
        self.output_size = HINT_SIZE

    def hints(self, tags: Tensor, mask: Tensor | None) -> Tensor:
        """(B, T) tag ids -> (B, T): the slot type of the chunk that begins at each word,
        or `none`; as data/bio.extract_spans delimits chunks."""
        kind = self.kinds[tags]  # (B, T)
        begins = kind >= 0
        begins[:, 1:] &= ~self.continues[tags[:, :-1], tags[:, 1:]]
        hint = torch.where(begins, kind, torch.full_like(kind, self.none))
        return hint if mask is None else hint.masked_fill(~mask, self.none)

    def forward(self, hints: Tensor | None, words: Tensor, mask: Tensor | None) -> Tensor:
        """The embedded hints (B, T, HINT_SIZE), zeros at padding; `hints` None: the
        first pass, nothing decided yet. `words` (B, T) gives the shape."""
        if hints is None:
            hints = torch.full_like(words, self.none)
        x = self.embedding(hints)
        return x if mask is None else x * mask.unsqueeze(2).to(x.dtype)
