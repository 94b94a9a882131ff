"""The honesty gate: did a model learn anything? Judged on held-out wells only, never on the wells
that chose the checkpoint.

The test: a one-sided exact binomial test of the number of held-out wells called right against the
accuracy a label-blind guess can reach (the largest class's share of those wells). A model is
*learned* when p < 0.05. AUC (one class against the rest, averaged over classes) is reported beside
it as the threshold-free view. Numpy only, so the CLI, the docks and the benchmarks share it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

SIGNIFICANCE = 0.05
WHAT_TO_TRY = "label more wells, image more sites per well, or try another tile size"


@dataclass
class Verdict:
    learned: bool
    accuracy: float  # held-out well accuracy
    chance: float  # what a label-blind guess reaches on these wells
    p_value: float
    auc: float
    n_wells: int
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line for a biologist: the accuracy, chance, and whether to trust the answer."""
        if not self.n_wells:
            return self.reason
        head = f"held-out accuracy {self.accuracy:.2f} on {self.n_wells} wells (chance {self.chance:.2f}, p = {self.p_value:.2g})"
        return head + ("" if self.learned else f": NOT LEARNED, {self.reason}")


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), exactly (n is a count of wells: small)."""
    if k <= 0:
        return 1.0
    return float(min(1.0, sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))))


def auc_binary(positive: np.ndarray, negative: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half: P(score of a positive > score of a negative)."""
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    if not len(positive) or not len(negative):
        return math.nan
    greater = (positive[:, None] > negative[None, :]).sum()
    ties = (positive[:, None] == negative[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(positive) * len(negative)))


def macro_auc(y: np.ndarray, probs: np.ndarray) -> float:
    """One-vs-rest AUC averaged over the classes present among the wells (binary: the usual AUC)."""
    y, probs = np.asarray(y), np.asarray(probs, float)
    if probs.shape[1] == 2:
        return auc_binary(probs[y == 1, 1], probs[y == 0, 1])
    values = [auc_binary(probs[y == k, k], probs[y != k, k]) for k in range(probs.shape[1])]
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def assess(y: list[int] | np.ndarray, probs: np.ndarray, significance: float = SIGNIFICANCE) -> Verdict:
    """Verdict from held-out wells: true class index per well and (n_wells, n_classes) probabilities."""
    y = np.asarray(y, dtype=int)
    n = len(y)
    if n == 0:
        return Verdict(False, math.nan, math.nan, 1.0, math.nan, 0,
                       "no held-out wells to judge the model on: " + WHAT_TO_TRY)
    probs = np.asarray(probs, float)
    correct = int((probs.argmax(1) == y).sum())
    chance = float(np.bincount(y).max() / n)
    p = binomial_tail(correct, n, chance)
    accuracy, auc = correct / n, macro_auc(y, probs)
    learned = p < significance
    if learned:
        reason = f"{correct} of {n} held-out wells right, above chance {chance:.2f} (one-sided binomial p = {p:.2g})"
    elif correct / n > chance:
        reason = (f"{correct} of {n} held-out wells right is not clearly above chance {chance:.2f} "
                  f"(p = {p:.2g} >= {significance}): {WHAT_TO_TRY}")
    else:
        reason = f"{correct} of {n} held-out wells right is no better than chance {chance:.2f}: {WHAT_TO_TRY}"
    if not learned and n < 6:
        reason += f" (only {n} held-out wells: too few to show anything)"
    return Verdict(bool(learned), accuracy, chance, p, auc, n, reason)
