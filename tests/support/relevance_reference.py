"""The relevance model's reference training: descent on every word's weight, as ``relevance.train`` was first
written. The test checks ``train`` against it; bench/relevance_training.py times both."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pipeline.digest.relevance import NEUTRAL, Example, Model


def primal_train(found: Sequence[Example], *, steps: int = 300, rate: float = 1.0, penalty: float = 0.01) -> Model:
    """Logistic regression by full-batch gradient descent from zero on every word's weight."""
    if not found:
        return NEUTRAL
    weights: dict[str, float] = {}
    bias, n = 0.0, len(found)
    for _ in range(steps):
        grad: dict[str, float] = {}
        grad_bias = 0.0
        for ex in found:
            z = bias + sum(weights.get(t, 0.0) * x for t, x in ex.vector.items())
            error = 1 / (1 + math.exp(-max(-30.0, min(30.0, z)))) - (1.0 if ex.label > 0 else 0.0)
            grad_bias += error
            for t, x in ex.vector.items():
                grad[t] = grad.get(t, 0.0) + error * x
        for t in set(grad) | set(weights):
            weights[t] = weights.get(t, 0.0) - rate * (grad.get(t, 0.0) / n + penalty * weights.get(t, 0.0))
        bias -= rate * grad_bias / n
    return Model({t: w for t, w in weights.items() if abs(w) > 1e-9}, 0.0)
