"""Tag raw text: a Predictor loads a checkpoint once and tags many utterances, reporting
slots against the original text (data/tokenize.py splits it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from slotfill.analysis.evaluate import Predictions, predict
from slotfill.data.batching import encode_split
from slotfill.data.bio import extract_spans
from slotfill.data.corpus import Example
from slotfill.data.tokenize import Token, tokenize
from slotfill.models.checkpoint import load_checkpoint


class Predictor:
    """A checkpoint loaded once; `predict` tags a list of raw utterances."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu",
                 batch_size: int = 256) -> None:
        ckpt = load_checkpoint(checkpoint)
        self.device = torch.device(device)
        self.model = ckpt.build_model(self.device)
        self.vocabs = ckpt.vocabs
        self.config = ckpt.config
        self.batch_size = batch_size
        self.known = frozenset(ckpt.vocabs.words.itos[2:])  # minus <pad>, <unk>
        self.predicts_intents = ckpt.predicts_intents

    def predict(self, texts: Sequence[str],
                tokenized: Sequence[list[Token]] | None = None) -> list[dict]:
        """One result per text: {text, tokens, tags, slots: [{slot, value, start, end}]},
        plus `intent` when the model predicts intents. `tokenized`: the texts already
        split by `tokenize(text, self.known)`, when the caller has them."""
        if tokenized is None:
            tokenized = [tokenize(text, self.known) for text in texts]
        predicted = self.tag([tuple(t.norm for t in tokens) for tokens in tokenized])
        results = [_result(text, tokens, tags)
                   for text, tokens, tags in zip(texts, tokenized, predicted.tags)]
        if predicted.intents is not None:
            for result, intent in zip(results, predicted.intents):
                result["intent"] = intent
        return results

    def tag(self, utterances: Sequence[Sequence[str]]) -> Predictions:
        """Tags (and intents) for tokenised, normalised utterances. An empty utterance
        gets no tags, and no intent (None) when the model predicts intents."""
        nonempty = [i for i, tokens in enumerate(utterances) if tokens]
        tags: list[list[str]] = [[] for _ in utterances]
        intents = [None] * len(utterances) if self.predicts_intents else None
        if nonempty:
            examples = [Example(tuple(utterances[i]), ()) for i in nonempty]
            split = encode_split(examples, self.vocabs).to(self.device)
            found = predict(self.model, split, self.vocabs, self.batch_size)
            for j, i in enumerate(nonempty):
                tags[i] = found.tags[j]
                if intents is not None:
                    intents[i] = found.intents[j]
        return Predictions(tags, intents)


def _result(text: str, tokens: list[Token], tags: list[str]) -> dict:
    slots = []
    for slot, first, last in extract_spans(tags):
        start, end = tokens[first].start, tokens[last - 1].end
        slots.append({"slot": slot, "value": text[start:end], "start": start, "end": end})
    return {"text": text, "tokens": [t.text for t in tokens], "tags": tags, "slots": slots}
