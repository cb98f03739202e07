"""Ranking metrics for the backtest: NDCG@k, precision@k, Spearman's rho, and bootstrap intervals over days.

Pure and small; ``pipeline.digest.backtest`` says what they are computed on and why.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pipeline.errors import BacktestError

K = 10
RESAMPLES = 2000
SEED = 2024


def order(scores: Sequence[float], ids: Sequence[str]) -> list[int]:
    """Candidate positions best first; ties (to 9 decimals, so float noise never decides) by arXiv id."""
    return sorted(range(len(scores)), key=lambda i: (-round(scores[i], 9), ids[i]))


def _dcg(grades: Iterable[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(grades))


def ndcg_at(ranked: Sequence[int], gains: Sequence[float], k: int = K) -> float:
    """NDCG@k of the order ``ranked`` (candidate positions, best first), graded by ``gains``."""
    ideal = _dcg(sorted(gains, reverse=True)[:k])
    if ideal <= 0:
        return 0.0
    return _dcg(gains[i] for i in ranked[:k]) / ideal


def precision_at(ranked: Sequence[int], gains: Sequence[float], k: int = K) -> float:
    """The share of the order's top k among the truth's top k (ties with the k-th gain included, zero gains not)."""
    if not gains:
        return 0.0
    kth = sorted(gains, reverse=True)[: k][-1]
    relevant = {i for i, g in enumerate(gains) if g > 0 and g >= kth}
    return sum(1 for i in ranked[:k] if i in relevant) / min(k, len(gains))


def average_ranks(values: Sequence[float]) -> list[float]:
    """Ranks 1..n of ``values``, ascending, ties sharing the average of the ranks they span."""
    ranks = [0.0] * len(values)
    ordered = sorted(range(len(values)), key=lambda i: values[i])
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and values[ordered[end + 1]] == values[ordered[start]]:
            end += 1
        for j in range(start, end + 1):
            ranks[ordered[j]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman's rho with tied values at their average rank; 0 when either side is constant."""
    if len(xs) < 2:
        return 0.0
    rx, ry = average_ranks([round(x, 9) for x in xs]), average_ranks(ys)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    vx, vy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    if vx == 0 or vy == 0:
        return 0.0
    return cov / math.sqrt(vx * vy)


@dataclass(frozen=True, slots=True)
class DayMetrics:
    ndcg: float
    precision: float
    spearman: float


def day_metrics(scores: Sequence[float], gains: Sequence[float], ids: Sequence[str], k: int = K) -> DayMetrics:
    ranked = order(scores, ids)
    return DayMetrics(ndcg_at(ranked, gains, k), precision_at(ranked, gains, k), spearman(scores, gains))


@dataclass(frozen=True, slots=True)
class Estimate:
    mean: float
    low: float
    high: float


@lru_cache(maxsize=16)
def _resamples(n: int, resamples: int, seed: int) -> tuple[tuple[int, ...], ...]:
    rng = random.Random(seed)
    return tuple(tuple(rng.randrange(n) for _ in range(n)) for _ in range(resamples))


def bootstrap(values: Sequence[float], *, resamples: int = RESAMPLES, seed: int = SEED,
              level: float = 0.95) -> Estimate:
    """The mean of ``values`` and its percentile bootstrap interval, resampling the values with replacement.

    The draws depend only on ``len(values)``, ``resamples`` and ``seed``: every scorer judged on the
    same days is resampled the same way.
    """
    if not values:
        raise BacktestError("no days to average")
    means = sorted(statistics.fmean(map(values.__getitem__, draw)) for draw in _resamples(len(values), resamples,
                                                                                          seed))
    tail = (1 - level) / 2
    low = means[round(tail * (len(means) - 1))]
    high = means[round((1 - tail) * (len(means) - 1))]
    return Estimate(statistics.fmean(values), low, high)
