"""Fusion of ranked lists: weighted reciprocal-rank fusion or normalised-score fusion, and
the source weights that boost preferred documents after fusing."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

import numpy as np

from retrieval.errors import RetrievalError

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
         rrf_k: float = 60.0, boost: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fused (ids, scores), best first; ties are broken by id so results are reproducible.

    ``rrf``: sum of ``w / (rrf_k + rank + 1)``. ``zscore``: sum of ``w * z`` where ``z`` is
    the score standardised over that ranker's candidates; a candidate a ranker did not
    return gets that ranker's lowest z (a ranker whose candidates all tie gives them 1, the
    rest 0).

    ``boost`` (indexed by id: each candidate's source weight) multiplies a candidate's
    evidence, its fused score above what a candidate no ranker returned gets: under ``rrf``
    that floor is 0, so the score itself is multiplied; under ``zscore`` the scores are
    shifted by the floor first, since multiplying a negative sum would demote.
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
    scores = np.bincount(inverse, weights=np.concatenate(all_parts), minlength=len(ids))
    if boost is not None:
        scores = scores * boost[ids]
    scores = scores + floors
    order = np.lexsort((ids, -scores))
    return ids[order], scores[order].astype(np.float32)


def valid_source_weights(weights: dict[str, float]) -> dict[str, float]:
    """``weights`` if :func:`check_source_weights` passes, else a ValueError (a pydantic
    validator's error): the one check the index and generate configs share."""
    try:
        check_source_weights(weights)
    except RetrievalError as e:
        raise ValueError(str(e)) from None
    return weights


def check_source_weights(weights: Mapping[str, float]) -> None:
    """Source weights are ``{glob: weight}`` with a non-empty glob and a finite weight > 0
    (0 would hide a source, which is what leaving it out of the corpus is for)."""
    for glob, w in weights.items():
        if not isinstance(glob, str) or not glob.strip():
            raise RetrievalError(f"source weight glob {glob!r} is empty")
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w <= 0:
            raise RetrievalError(f"source weight of '{glob}' must be a number > 0, not {w!r}")


def source_weight(source: str, title: str, weights: Mapping[str, float]) -> float:
    """A chunk's weight: the largest weight among the globs that match its title or its
    source path, 1 when none does. The largest, not a product: a document under two
    preferred globs is not preferred twice.

    Matching is ``fnmatch``, case-insensitive, ``*`` crossing ``/``; a path matches when it
    or any tail of it after a ``/`` does, since a source path starts wherever ingest was
    pointed: ``notices/*`` matches ``marrowick/notices/fees.txt``, ``*.rst`` any .rst file.
    """
    source, title = source.lower(), title.lower()
    candidates = [title, source] + [source[i + 1:] for i, ch in enumerate(source) if ch == "/"]
    matched = [w for g, w in weights.items()
               if any(fnmatchcase(text, g.lower()) for text in candidates)]
    return float(max(matched, default=1.0))
