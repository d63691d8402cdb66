"""Fusion of ranked lists: weighted reciprocal-rank fusion or normalised-score fusion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FUSIONS = ("rrf", "zscore")


@dataclass(frozen=True)
class Ranked:
    """One ranker's candidates: ids, their scores and 0-based ranks (ties share a rank)."""

    ids: np.ndarray
    scores: np.ndarray
    ranks: np.ndarray

    @classmethod
    def of(cls, ids: np.ndarray, scores: np.ndarray) -> Ranked:
        """From ids sorted best first."""
        return cls(np.asarray(ids, np.int64), np.asarray(scores, np.float32),
                   np.arange(len(ids), dtype=np.int64))


def fuse(lists: dict[str, Ranked], weights: dict[str, float], *, fusion: str = "rrf",
         rrf_k: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """Fused (ids, scores), best first; ties are broken by id so results are reproducible.

    ``rrf``: sum of ``w / (rrf_k + rank + 1)``. ``zscore``: sum of ``w * z`` where ``z`` is
    the score standardised over that ranker's candidates; a candidate a ranker did not
    return gets that ranker's lowest z (a ranker whose candidates all tie gives them 1, the
    rest 0).
    """
    assert fusion in FUSIONS, f"unknown fusion {fusion}"
    all_ids, all_parts = [], []
    floors = 0.0
    for name, r in lists.items():
        w = weights.get(name, 0.0)
        if not w or not len(r.ids):
            continue
        if fusion == "rrf":
            part = w / (rrf_k + r.ranks + 1.0)
            floor = 0.0
        else:
            std = float(r.scores.std())
            if std < 1e-9:  # one candidate (or all tied): it still beats the ones not returned
                part, floor = np.full(len(r.ids), w, np.float64), 0.0
            else:
                z = (r.scores - r.scores.mean()) / std
                part, floor = w * z, w * float(z.min())
        floors += floor
        all_ids.append(r.ids)
        all_parts.append(np.asarray(part, np.float64) - floor)
    if not all_ids:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    ids, inverse = np.unique(np.concatenate(all_ids), return_inverse=True)
    scores = np.bincount(inverse, weights=np.concatenate(all_parts), minlength=len(ids)) + floors
    order = np.lexsort((ids, -scores))
    return ids[order], scores[order].astype(np.float32)
