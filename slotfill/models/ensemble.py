"""Ensembles: several trained taggers that tag as one model.

Members read the same batch (they share vocabularies and tag set) and their outputs are
averaged: the tag probabilities of softmax heads, or the emissions and the transition,
start and end scores of CRF heads (one Viterbi pass over the averaged potentials), and
the intent probabilities of the members that predict intents (chosen as their intent
heads choose: the best label, or the atoms above the threshold). An ensemble has the
Tagger's interface for inference (`decode`, `scores`, `outputs`), so evaluation,
prediction, serving and export take it like any model; checkpoint.py stores it as its
members' configs and weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from slotfill.config import Config
from slotfill.data.batching import Batch
from slotfill.data.vocab import Vocabs
from slotfill.errors import CheckpointError
from slotfill.models.crf import CRFHead, viterbi
from slotfill.models.tagger import Confidence, Decoded, build_model, with_confidence


class Ensemble(nn.Module):
    def __init__(self, configs: Sequence[Config], vocabs: Vocabs) -> None:
        """Untrained members built from their configs (load their weights afterwards)."""
        super().__init__()
        self.configs = list(configs)
        self.members = nn.ModuleList(build_model(c.model, vocabs) for c in self.configs)
        self.crf = isinstance(self.members[0].head, CRFHead)

    @property
    def predicts_intents(self) -> bool:
        return any(m.intent_head is not None for m in self.members)

    @property
    def intent_head(self):
        """The first intent head among the members: it chooses and names the intents."""
        return next((m.intent_head for m in self.members if m.intent_head is not None), None)

    def intent_names(self, intents: Tensor) -> list[str]:
        return self.intent_head.names(intents)

    def outputs(self, batch: Batch) -> tuple[Tensor, Tensor | None]:
        """Averaged tag scores (B, T, K): emissions for CRF heads, log-probabilities for
        softmax heads; and the averaged intent distribution (B, I) or None."""
        tag_scores, intents = zip(*(m.outputs(batch) for m in self.members))
        if self.crf:
            scores = torch.stack(tag_scores).mean(0)
        else:
            scores = torch.stack(tag_scores).softmax(-1).mean(0).log()
        known = [p for p in intents if p is not None]
        return scores, torch.stack(known).mean(0) if known else None

    def scores(self, batch: Batch) -> Tensor:
        return self.outputs(batch)[0]

    def potentials(self) -> tuple[Tensor, Tensor, Tensor]:
        """The members' mean transition, start and end scores (CRF heads)."""
        parts = [m.head.potentials() for m in self.members]
        trans, start, end = (torch.stack(p).mean(0) for p in zip(*parts))
        return trans, start, end

    def decode(self, batch: Batch) -> Decoded:
        scores, intents = self.outputs(batch)
        return self._best_tags(scores, batch), (self.intent_head.choose(intents)[0]
                                                if intents is not None else None)

    def _best_tags(self, scores: Tensor, batch: Batch) -> Tensor:
        """(B, T) tag ids from averaged scores: Viterbi for CRF heads, else argmax."""
        return viterbi(scores, batch.mask, *self.potentials()) if self.crf \
            else scores.argmax(-1)

    def decode_with_confidence(self, batch: Batch) -> tuple[Tensor, Tensor | None, Confidence]:
        """`decode`, with each decoded span's confidence the mean of the members'
        confidences in it, and each intent's its averaged probability."""
        scores, intents = self.outputs(batch)
        tags = self._best_tags(scores, batch)
        chosen = self.intent_head.choose(intents) if intents is not None else None

        def span_confidence(spans: Tensor) -> Tensor:
            return torch.stack([m.head.span_confidence(m.read(batch)[0], batch.mask, tags,
                                                       spans)
                                for m in self.members]).mean(0)  # (N,)
        return with_confidence(tags, chosen, batch, self.members[0].tag_names,
                               span_confidence)


def check_members(names: Sequence[str], configs: Sequence[Config],
                  vocabs: Sequence[Vocabs]) -> Vocabs:
    """Whether these models can form an ensemble; returns the vocabularies the ensemble
    reads with (characters and gazetteers from a member that has them). `names` label
    the members in the error, which says what differs."""
    problems = []
    first = names[0]
    for name, cfg, voc in zip(names, configs, vocabs):
        if cfg.model.type == "seq2seq":
            problems.append(f"{name}: a seq2seq decoder feeds back its own greedy choices, "
                            "so its scores cannot be averaged with others")
        if cfg.model.head != configs[0].model.head:
            problems.append(f"{name}: head {cfg.model.head}, but {first} has "
                            f"{configs[0].model.head} (members must share the head)")
        if cfg.model.intent and configs[0].model.intent and \
                cfg.model.multi_intent != configs[0].model.multi_intent:
            problems.append(f"{name}: multi_intent {cfg.model.multi_intent}, but {first} has "
                            f"{configs[0].model.multi_intent} (their intent probabilities "
                            "are over labels and over atomic intents: they cannot be averaged)")
        for kind in ("words", "tags", "intents"):
            mine, theirs = getattr(voc, kind), getattr(vocabs[0], kind)
            if mine != theirs:
                problems.append(f"{name}: its {kind} differ from {first}'s "
                                f"({_difference(mine, theirs)})")
        if voc.pretrained_words != vocabs[0].pretrained_words:
            problems.append(f"{name}: {voc.pretrained_words} words from a vectors file "
                            f"alone, {first} has {vocabs[0].pretrained_words}")
    shared = {}  # characters and gazetteers: those members that have them must agree
    for kind in ("chars", "gazetteers", "subwords"):
        having = [(n, getattr(v, kind)) for n, v in zip(names, vocabs)
                  if getattr(v, kind) is not None]
        for name, value in having[1:]:
            if value != having[0][1]:
                problems.append(f"{name}: its {kind} differ from {having[0][0]}'s")
        shared[kind] = having[0][1] if having else None
    if len(names) < 2:
        problems.append("an ensemble needs at least two models")
    if problems:
        raise CheckpointError("Cannot combine these models into an ensemble",
                              "\n".join(problems) + "\nmembers must be trained on the same "
                              "training data (same vocabularies and tag set)")
    return Vocabs(vocabs[0].words, vocabs[0].tags, vocabs[0].intents,
                  pretrained_words=vocabs[0].pretrained_words, **shared)


def _difference(mine, theirs) -> str:
    if mine is None or theirs is None:
        return "one has none"
    only_mine = [s for s in mine.itos if s not in theirs]
    only_theirs = [s for s in theirs.itos if s not in mine]
    if not only_mine and not only_theirs:
        return "same entries, another order"
    shown = [f"only here: {', '.join(only_mine[:5])}" if only_mine else "",
             f"missing: {', '.join(only_theirs[:5])}" if only_theirs else ""]
    return "; ".join(s for s in shown if s)
