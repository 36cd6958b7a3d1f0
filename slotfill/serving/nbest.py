"""n-best answers: the n most probable tag sequences of each utterance, best first, each
with its probability and the confidences of its spans (models/posteriors.py computes
them); Predictor.alternatives turns them into slots of the raw text.

A CRF's probabilities are exact; a softmax head's are the product of the words' tag
probabilities (an approximation: see posteriors.py). Fewer than n come back where fewer
sequences are possible: those the CRF's tag scheme allows, or K ** words for a softmax
head. The intent is not part of the list: it stays the utterance's one answer.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from slotfill.data.batching import EncodedSplit, make_batch, sorted_batches
from slotfill.data.bio import extract_spans
from slotfill.data.vocab import Vocabs
from slotfill.errors import UsageError
from slotfill.models.posteriors import has_n_best, n_best, n_best_confidences
from slotfill.runtime import threads_for_batch


SUM_AT_MOST = 1 - 1e-9  # of an utterance's n-best probabilities


class Ranked(NamedTuple):
    """One of an utterance's n best tag sequences."""

    probability: float
    tags: list[str]
    confidence: dict[tuple[int, int], float]  # (start, end) of each span -> probability


def check_n_best(value: object, name: str = "n_best") -> int:
    """`value` if it is a whole number of at least 1, else a UsageError naming `name`."""
    what = "how many of the most probable tag sequences to list (1: the best, with its " \
           "probability)"
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{name} must be a whole number, not {value!r}", f"it is {what}")
    if value < 1:
        raise UsageError(f"{name} must be at least 1, not {value}", f"it is {what}")
    return value


def check_model(model: nn.Module) -> None:
    """A UsageError unless the model's tag head can list its n best sequences."""
    if not has_n_best(model):
        raise UsageError("n-best lists need a CRF or softmax tag head",
                         "this model's seq2seq decoder decodes greedily, each tag after "
                         "the one it chose before; its n best sequences would need a "
                         "beam search")


@torch.inference_mode()
def tag_n_best(model: nn.Module, split: EncodedSplit, vocabs: Vocabs, n: int,
               batch_size: int, slack: float) -> list[list[Ranked]]:
    """Up to n sequences per utterance of `split` (none empty), in its order, batched as
    analysis.evaluate.predict batches (`slack`), so that the confidences of the best
    sequence's spans are those of the best answer."""
    if model.training:
        model.eval()
    found: list[list[Ranked]] = [[] for _ in range(len(split))]
    for index in sorted_batches(split.lengths, batch_size, slack):
        batch = make_batch(split, index)
        with threads_for_batch(batch.words.numel(), batch.words.device):
            tags, log_probs = n_best(model, batch, n)  # (B, n, T), (B, n)
            probs = log_probs.double().exp()  # (B, n)
            # Their sum is at most 1, but for float32's rounding of log Z (a sure model's
            # best alone can come out at 1 + 1e-7): scaled to keep it below 1 - 1e-9,
            # far from any sum of floats a caller adds them up in.
            probs = (probs * (SUM_AT_MOST / probs.sum(1, keepdim=True)).clamp_max(1.0)).tolist()
            listed = []  # (row, rank, tag names) of the sequences there are
            for b, (paths, scores, length) in enumerate(zip(
                    tags.tolist(), log_probs.tolist(), batch.lengths.tolist())):
                listed += [(b, rank, vocabs.tags.decode(path[:length]))
                           for rank, (path, score) in enumerate(zip(paths, scores))
                           if score > float("-inf")]
            chunks = [[(start, end) for _, start, end in extract_spans(names)]
                      for _, _, names in listed]
            spans = torch.tensor([(b, rank, start, end) for (b, rank, _), here
                                  in zip(listed, chunks) for start, end in here],
                                 dtype=torch.long, device=tags.device).view(-1, 4)  # (N, 4)
            values = iter(n_best_confidences(model, batch, tags, spans).tolist()
                          if len(spans) else [])
        rows = index.tolist()
        for (b, rank, names), here in zip(listed, chunks):
            found[rows[b]].append(Ranked(probs[b][rank], names,
                                         {span: next(values) for span in here}))
    return found


def empty_sequences() -> list[Ranked]:
    """The n-best list of an utterance without words: one sequence, of no tags, sure."""
    return [Ranked(1.0, [], {})]
