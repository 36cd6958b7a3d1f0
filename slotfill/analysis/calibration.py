"""Calibration: does a confidence of 0.8 come true 80% of the time?

Confidences fall into equal-width bins over [0, 1]; each bin compares its mean
confidence with the share that was right. The expected calibration error (ECE) is the
mean gap, weighted by how many predictions each bin holds (Guo et al. 2017).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass
class Bin:
    low: float
    high: float
    count: int
    confidence: float  # mean confidence in the bin (0 when empty)
    accuracy: float  # share right in the bin (0 when empty)


@dataclass
class Reliability:
    bins: list[Bin]
    ece: float
    count: int
    accuracy: float  # share right over all predictions
    confidence: float  # mean confidence over all predictions

    def to_dict(self) -> dict:
        return asdict(self)


def reliability(confidences: Sequence[float], right: Sequence[bool],
                bins: int = 10) -> Reliability:
    """Reliability bins and ECE of predictions with these confidences (in [0, 1])."""
    if len(confidences) != len(right):
        raise ValueError(f"expected {len(confidences)} outcomes, got {len(right)}")
    members: list[list[int]] = [[] for _ in range(bins)]
    for i, p in enumerate(confidences):
        members[min(int(p * bins), bins - 1)].append(i)  # 1.0 belongs to the last bin
    n = len(confidences)
    result, ece = [], 0.0
    for b, index in enumerate(members):
        conf = sum(confidences[i] for i in index) / len(index) if index else 0.0
        acc = sum(bool(right[i]) for i in index) / len(index) if index else 0.0
        result.append(Bin(b / bins, (b + 1) / bins, len(index), conf, acc))
        ece += len(index) / n * abs(acc - conf) if n else 0.0
    return Reliability(result, ece, n, sum(map(bool, right)) / n if n else 0.0,
                       sum(confidences) / n if n else 0.0)
