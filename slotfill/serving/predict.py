"""Tag raw text: a Predictor loads a checkpoint once and tags many utterances, reporting
slots against the original text (data/tokenize.py splits it), and on request each
utterance's n most probable tag sequences (nbest.py)."""

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
from slotfill.serving.nbest import Ranked, check_model, check_n_best, empty_sequences, tag_n_best

# Up to one padded position per real token before a batch is split: each batch's
# forward pass has a fixed cost of about a hundred padded positions, and the utterances
# of a served request, or of the requests that share a pass, then fit in one batch
# instead of the three or four that evaluation's 0.2 makes of them (its batches of 256
# utterances, sorted by length, hardly need padding at all).
PADDING_SLACK = 1.0


class Predictor:
    """A checkpoint loaded once; `predict` tags a list of raw utterances."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu",
                 batch_size: int = 256) -> None:
        ckpt = load_checkpoint(checkpoint)
        self.path = ckpt.path  # what worker processes load (serving/stream.py)
        self.device = torch.device(device)
        self.model = ckpt.build_model(self.device)
        self.vocabs = ckpt.vocabs
        self.config = ckpt.config
        self.batch_size = batch_size
        self.known = frozenset(ckpt.vocabs.words.itos[2:])  # minus <pad>, <unk>
        self.predicts_intents = ckpt.predicts_intents

    def predict(self, texts: Sequence[str],
                tokenized: Sequence[list[Token]] | None = None,
                n_best: int | None = None) -> list[dict]:
        """One result per text: {text, tokens, tags, slots: [{slot, value, start, end,
        confidence}]}, plus `intent` and `intent_confidence` when the model predicts
        intents, and with `n_best` its n most probable tag sequences (`alternatives`).
        `tokenized`: the texts already split by `self.tokenize`, when the caller has
        them. Confidences are probabilities (models/tagger.py)."""
        if n_best is not None:
            self.check_n_best(n_best)
        if tokenized is None:
            tokenized = [self.tokenize(text) for text in texts]
        predicted = self.tag([tuple(t.norm for t in tokens) for tokens in tokenized],
                             confidence=True)
        results = [_result(text, tokens, tags, sure) for text, tokens, tags, sure
                   in zip(texts, tokenized, predicted.tags, predicted.confidence)]
        if predicted.intents is not None:
            for result, intent, p in zip(results, predicted.intents,
                                         predicted.intent_confidence):
                result["intent"] = intent
                result["intent_confidence"] = p
        if n_best is not None:
            for result, found in zip(results, self.alternatives(texts, tokenized, n_best)):
                result["n_best"] = found
        return results

    def check_n_best(self, n: object, name: str = "n_best") -> int:
        """`n` if it is a whole number of at least 1 and the model can list n-best
        sequences, else a UsageError (naming the option `name`)."""
        check_model(self.model)
        return check_n_best(n, name)

    def alternatives(self, texts: Sequence[str], tokenized: Sequence[list[Token]],
                     n: int) -> list[list[dict]]:
        """Per text, up to n tag sequences, most probable first: [{probability, tags,
        slots}], the slots as `predict` gives them; the first is `predict`'s answer
        unless two sequences score exactly the same. Fewer where fewer are possible."""
        nonempty = [i for i, tokens in enumerate(tokenized) if tokens]
        found: list[list[Ranked]] = [empty_sequences() for _ in texts]
        if nonempty:
            examples = [Example(tuple(t.norm for t in tokenized[i]), ()) for i in nonempty]
            split = encode_split(examples, self.vocabs).to(self.device)
            ranked = tag_n_best(self.model, split, self.vocabs, n, self.batch_size,
                                PADDING_SLACK)
            for i, sequences in zip(nonempty, ranked):
                found[i] = sequences
        return [[{"probability": one.probability, "tags": one.tags,
                  "slots": _slots(text, tokens, one.tags, one.confidence)}
                 for one in sequences]
                for text, tokens, sequences in zip(texts, tokenized, found)]

    def tokenize(self, text: str) -> list[Token]:
        """The text's tokens as the model was trained to read them (its data.tokenizer)."""
        return tokenize(text, self.known, self.config.data.tokenizer)

    def tag(self, utterances: Sequence[Sequence[str]], confidence: bool = False) -> Predictions:
        """Tags (and intents) for tokenised, normalised utterances; `confidence` adds
        span and intent confidences. An empty utterance gets no tags, and no intent
        (None) when the model predicts intents."""
        nonempty = [i for i, tokens in enumerate(utterances) if tokens]
        n = len(utterances)
        tags: list[list[str]] = [[] for _ in utterances]
        intents = [None] * n if self.predicts_intents else None
        spans_p = [{} for _ in utterances] if confidence else None
        intents_p = [None] * n if confidence and self.predicts_intents else None
        if nonempty:
            examples = [Example(tuple(utterances[i]), ()) for i in nonempty]
            split = encode_split(examples, self.vocabs).to(self.device)
            found = predict(self.model, split, self.vocabs, self.batch_size,
                            confidence=confidence, slack=PADDING_SLACK)
            for j, i in enumerate(nonempty):
                tags[i] = found.tags[j]
                if intents is not None:
                    intents[i] = found.intents[j]
                if spans_p is not None:
                    spans_p[i] = found.confidence[j]
                if intents_p is not None:
                    intents_p[i] = found.intent_confidence[j]
        return Predictions(tags, intents, spans_p, intents_p)


def _result(text: str, tokens: list[Token], tags: list[str],
            confidence: dict[tuple[int, int], float]) -> dict:
    return {"text": text, "tokens": [t.text for t in tokens], "tags": tags,
            "slots": _slots(text, tokens, tags, confidence)}


def _slots(text: str, tokens: list[Token], tags: list[str],
           confidence: dict[tuple[int, int], float]) -> list[dict]:
    slots = []
    for slot, first, last in extract_spans(tags):
        start, end = tokens[first].start, tokens[last - 1].end
        slots.append({"slot": slot, "value": text[start:end], "start": start, "end": end,
                      "confidence": confidence[first, last]})
    return slots


def drop_unsure(result: dict, threshold: float) -> dict:
    """`result` without the slots whose confidence is below `threshold`; their tokens'
    tags become O, so that `tags` and `slots` still agree."""
    kept = [slot for slot in result["slots"] if slot["confidence"] >= threshold]
    if len(kept) == len(result["slots"]):
        return result
    tags = list(result["tags"])
    for (_, first, last), slot in zip(extract_spans(result["tags"]), result["slots"]):
        if slot["confidence"] < threshold:
            tags[first:last] = ["O"] * (last - first)
    return {**result, "tags": tags, "slots": kept}
