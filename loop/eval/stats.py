"""Uncertainty: bootstrap intervals per setup, paired intervals and p-values between setups,
Holm's correction across a family of paired tests, McNemar."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    mean: float
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "ci_low": self.ci_low, "ci_high": self.ci_high}

    def excludes_zero(self) -> bool:
        return self.ci_low > 0 or self.ci_high < 0


def bootstrap_ci(values: Sequence[float], *, n_boot: int = 2000, alpha: float = 0.05,
                 seed: int = 0) -> Interval:
    """Percentile bootstrap interval of the mean; deterministic under ``seed``."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return Interval(float(x.mean()), float(lo), float(hi))


def bootstrap_stat(rows: Sequence, statistic, *, n_boot: int = 2000, alpha: float = 0.05,
                   seed: int = 0) -> Interval:
    """Percentile bootstrap interval of a statistic of the whole sample (macro-F1, say, which
    is not a mean of per-item values): ``statistic(rows)`` on the rows resampled with
    replacement; deterministic under ``seed``."""
    rows = list(rows)
    if not rows:
        return Interval(float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    stats = [statistic([rows[i] for i in idx])
             for idx in rng.integers(0, len(rows), size=(n_boot, len(rows)))]
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return Interval(float(statistic(rows)), float(lo), float(hi))


def paired_diff_ci(a: Sequence[float], b: Sequence[float], **kw) -> Interval:
    """Bootstrap interval of mean(a - b) over the same questions (resampled together)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, f"paired samples differ in length: {a.shape} vs {b.shape}"
    return bootstrap_ci(a - b, **kw)


def paired_p(a: Sequence[float], b: Sequence[float], *, n_boot: int = 2000,
             seed: int = 0) -> float:
    """Two-sided bootstrap p-value of mean(a - b) = 0: twice the share of resampled means on
    the far side of 0 (the same resamples as :func:`paired_diff_ci`, so p < 0.05 exactly
    when its 95% interval excludes 0, up to ties at 0)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size == 0 or not np.any(d):
        return 1.0
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    tail = min(float((means <= 0).mean()), float((means >= 0).mean()))
    return min(1.0, 2 * tail)


def holm(p_values: Sequence[float], alpha: float = 0.05) -> tuple[list[float], list[bool]]:
    """Holm's step-down correction (family-wise error <= ``alpha``): the adjusted p-values
    and which hypotheses are rejected, in the input's order."""
    p = np.asarray(p_values, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))  # monotone step-down
        adjusted[i] = running
    return [float(x) for x in adjusted], [bool(x <= alpha) for x in adjusted]


def mcnemar_p(a_correct: Sequence[float], b_correct: Sequence[float]) -> float:
    """Exact McNemar test (two-sided binomial on the discordant pairs) for paired EM."""
    from scipy.stats import binomtest

    a, b = np.asarray(a_correct) > 0.5, np.asarray(b_correct) > 0.5
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
