"""How unsure a model is of each utterance: the measures active learning ranks by.

- `mnlp`: length-normalised least confidence (Shen et al. 2018): minus the log-probability
  of the best tag sequence divided by the words, the intent counted as one more word when
  the model predicts intents. Exact and cheap with a CRF (Viterbi score minus log Z).
- `entropy`: the mean over words of the entropy of each word's tag distribution (the
  CRF's marginals, a softmax head's probabilities) (Settles and Craven 2008's token
  entropy), plus the intent distribution's entropy as one more word.
- `margin`: one minus the smallest gap, over the words (and the intent), between the two
  most probable labels of a word: the most ambiguous decision in the utterance.
- `bald`: BALD over MC dropout (Houlsby et al. 2011; Gal et al. 2017): the model samples
  its dropout `samples` times; the mean over words of the entropy of the mean distribution
  minus the mean entropy of each sample's: what the samples disagree on.
- `random`: uniform draws, the baseline every strategy must beat.

Higher is more uncertain for all of them. `confidence` is exp(-mnlp): the geometric mean
of the probabilities of the answer's decisions, in (0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from slotfill.data.batching import encode_split, make_batch, sorted_batches
from slotfill.data.corpus import Example
from slotfill.data.vocab import Vocabs
from slotfill.models.posteriors import best_path, distributions

STRATEGIES = ("mnlp", "entropy", "margin", "bald", "random")


@torch.no_grad()
def uncertainty(model: nn.Module, vocabs: Vocabs, utterances: Sequence[Sequence[str]],
                strategy: str, samples: int = 10, seed: int = 1,
                batch_size: int = 256) -> list[float]:
    """One score per utterance (tokenised, normalised; an empty one scores 0)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    generator = torch.Generator().manual_seed(seed)
    if strategy == "random":
        return torch.rand(len(utterances), generator=generator).tolist()
    scores = [0.0] * len(utterances)
    kept = [i for i, u in enumerate(utterances) if len(u)]
    if not kept:
        return scores
    split = encode_split([Example(tuple(utterances[i]), ()) for i in kept], vocabs)
    model.eval()
    for index in sorted_batches(split.lengths, batch_size):
        batch = make_batch(split, index)
        values = _measure(model, batch, strategy, samples, generator)
        for j, value in zip(index.tolist(), values.tolist()):
            scores[kept[j]] = value
    model.eval()
    return scores


def _measure(model: nn.Module, batch, strategy: str, samples: int,
             generator: torch.Generator) -> Tensor:
    """(B,) scores of one batch."""
    words = batch.lengths.to(torch.float32)  # (B,)
    if strategy == "mnlp":
        _, log_p, intents = best_path(model, batch)  # (B,), (B, I) or None
        if intents is None:
            return -log_p / words
        return -(log_p + intents.max(1).values.clamp_min(1e-12).log()) / (words + 1)
    if strategy == "bald":
        return _bald(model, batch, samples, generator)
    tags, intents = distributions(model, batch)  # (B, T, K), (B, I)
    real = _real(batch, tags)
    if strategy == "entropy":
        total = (_entropy(tags) * real).sum(1)
        if intents is not None:
            return (total + _entropy(intents)) / (words + 1)
        return total / words
    # margin: the smallest gap between a decision's two most probable labels
    gaps = _gap(tags).masked_fill(real == 0, float("inf")).min(1).values  # (B,)
    if intents is not None:
        gaps = torch.minimum(gaps, _gap(intents))
    return 1 - gaps


def _bald(model: nn.Module, batch, samples: int, generator: torch.Generator) -> Tensor:
    """Mutual information between the labels and the weights, over MC dropout samples."""
    state = torch.get_rng_state()
    torch.manual_seed(int(torch.randint(2**62, (), generator=generator)))
    model.train()  # dropout on; nothing here updates the weights
    try:
        draws = [distributions(model, batch) for _ in range(samples)]
    finally:
        model.eval()
        torch.set_rng_state(state)
    tags = torch.stack([t for t, _ in draws])  # (S, B, T, K)
    real = _real(batch, tags[0])
    info = (_entropy(tags.mean(0)) - _entropy(tags).mean(0)) * real  # (B, T)
    total, count = info.sum(1), batch.lengths.to(torch.float32)
    if draws[0][1] is not None:
        intents = torch.stack([i for _, i in draws])  # (S, B, I)
        total = total + _entropy(intents.mean(0)) - _entropy(intents).mean(0)
        count = count + 1
    return total / count


def _real(batch, tags: Tensor) -> Tensor:
    """(B, T) 1 at real words."""
    if batch.mask is None:
        return torch.ones(tags.shape[:2])
    return batch.mask.to(torch.float32)


def _entropy(p: Tensor) -> Tensor:
    """Entropy over the last dimension (nats)."""
    return -(p * p.clamp_min(1e-12).log()).sum(-1)


def _gap(p: Tensor) -> Tensor:
    """The gap between the two largest values of the last dimension."""
    top = p.topk(2, dim=-1).values
    return top[..., 0] - top[..., 1]


def confidence(mnlp: float) -> float:
    """exp(-mnlp): the geometric mean probability of the answer's decisions."""
    return float(torch.exp(torch.tensor(-mnlp)))
