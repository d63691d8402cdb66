"""The rankers and methods an index searches with, each registered once, here.

A *ranker* scores sentence units for a query: ``rank(index, query, query_vector, n)`` returns
its best ``n`` candidates as :class:`~retrieval.fusion.Ranked` unit ids, best first.
``needs_vector`` says it reads the query's embedding (else it is passed None and the query
is not embedded). A new ranker is one decorated function::

    @register_ranker("splade", needs_vector=False)
    def _splade(index, query, query_vector, n):
        ...

A *method* is a weighting of rankers, fused (``Settings.fusion``); a method with
``coverage`` reorders its first windows by query-word coverage (``Settings.coverage_weight``).
``weights=None`` means the index's configured ``Settings.weights``. A new method is one
call: ``register_method("lexical", {"bm25": 1.0, "bm25_local": 1.0})``. Every ranker is a
method of its own too (weight 1), unless a method of that name is registered.

:func:`method_names` lists what ``RetrievalIndex.search(method=...)`` accepts: for error
messages, config validation, an evaluation's default list and a CLI's choices.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from retrieval.errors import RetrievalError
from retrieval.fusion import Ranked
from retrieval.lexical import idf

if TYPE_CHECKING:
    from retrieval.index import RetrievalIndex, Settings

RankFn = Callable[["RetrievalIndex", str, "np.ndarray | None", int], Ranked]


@dataclass(frozen=True)
class Ranker:
    name: str
    rank: RankFn
    needs_vector: bool = False


@dataclass(frozen=True)
class Method:
    name: str
    weights: Mapping[str, float] | None = None  # None: the index's Settings.weights
    coverage: bool = False

    def weights_for(self, settings: Settings) -> dict[str, float]:
        return dict(settings.weights if self.weights is None else self.weights)


_RANKERS: dict[str, Ranker] = {}
_METHODS: dict[str, Method] = {}


def register_ranker(name: str, *, needs_vector: bool = False) -> Callable[[RankFn], RankFn]:
    """Decorator: register ``fn(index, query, query_vector, n) -> Ranked`` as ranker ``name``."""

    def add(fn: RankFn) -> RankFn:
        _RANKERS[name] = Ranker(name, fn, needs_vector)
        return fn

    return add


def register_method(name: str, weights: Mapping[str, float] | None = None, *,
                    coverage: bool = False) -> Method:
    """Register method ``name``: fused ``weights`` per ranker (None: the configured weights)."""
    if weights is not None:
        unknown = set(weights) - set(_RANKERS)
        if unknown:
            raise RetrievalError(f"method '{name}' names unknown rankers {sorted(unknown)} "
                                 f"(known: {', '.join(ranker_names())})")
        weights = MappingProxyType(dict(weights))
    method = Method(name, weights, coverage)
    _METHODS[name] = method
    return method


def unregister(name: str) -> None:
    """Drop a method and a ranker of that name (tests and plugins undoing themselves)."""
    _METHODS.pop(name, None)
    _RANKERS.pop(name, None)


def ranker_names() -> list[str]:
    return list(_RANKERS)


def method_names(*, rankers: bool = True) -> list[str]:
    """Every name a search accepts: the registered methods, then the rankers (each a method
    of its own) whose names no method takes. ``rankers=False``: the methods alone."""
    names = list(_METHODS)
    if rankers:
        names += [r for r in _RANKERS if r not in _METHODS]
    return names


def get_ranker(name: str) -> Ranker:
    try:
        return _RANKERS[name]
    except KeyError:
        raise RetrievalError(f"unknown ranker '{name}' (known: {', '.join(_RANKERS)})") from None


def get_method(name: str) -> Method:
    if name in _METHODS:
        return _METHODS[name]
    if name in _RANKERS:
        return Method(name, MappingProxyType({name: 1.0}))
    raise RetrievalError(f"unknown method '{name}' (known: {', '.join(method_names())})")


# -- the built-in rankers --------------------------------------------------------------------


@register_ranker("bm25")
def _bm25(index: RetrievalIndex, query: str, qv: np.ndarray | None, n: int) -> Ranked:
    """BM25 over sentence units."""
    scores, rows = index.bm25_units.search(query, n)
    return Ranked.of(rows, scores)


@register_ranker("dense", needs_vector=True)
def _dense(index: RetrievalIndex, query: str, qv: np.ndarray | None, n: int) -> Ranked:
    """Embedding similarity of sentence units."""
    scores, rows = index.dense_units.search(qv, n)
    keep = rows[0] >= 0
    return Ranked.of(rows[0][keep], scores[0][keep])


@register_ranker("bm25_chunk")
def _bm25_chunk(index: RetrievalIndex, query: str, qv: np.ndarray | None, n: int) -> Ranked:
    """BM25 over whole chunks; each unit takes its chunk's rank."""
    scores, rows = index.bm25_chunks.search(query, n)
    return index.chunks_to_units(rows, scores)


@register_ranker("dense_chunk", needs_vector=True)
def _dense_chunk(index: RetrievalIndex, query: str, qv: np.ndarray | None, n: int) -> Ranked:
    """Embedding similarity of whole chunks; each unit takes its chunk's rank."""
    s, r = index.dense_chunks.search(qv, n)
    keep = r[0] >= 0
    return index.chunks_to_units(r[0][keep], s[0][keep])


@register_ranker("bm25_local")
def _bm25_local(index: RetrievalIndex, query: str, qv: np.ndarray | None, n: int) -> Ranked:
    """BM25 over units with each word's IDF counted within the unit's document: a word found
    all over a paper (its topic) says little about which of its sentences answers."""
    total = np.zeros(len(index.units), np.float32)
    for rows, weight in index.bm25_units.postings(query):
        docs = index.unit_doc[rows]
        df = np.bincount(docs, minlength=len(index.doc_units))
        total[rows] += idf(index.doc_units, df)[docs] * weight
    top = np.flatnonzero(total > 0)
    if len(top) > n:
        top = top[np.argpartition(-total[top], n - 1)[:n]]
    top = top[np.lexsort((top, -total[top]))]  # by score, ties by row
    return Ranked.of(top, total[top])


# -- the built-in methods --------------------------------------------------------------------

register_method("bm25", {"bm25": 1.0, "bm25_chunk": 1.0})
register_method("dense", {"dense": 1.0, "dense_chunk": 1.0})
register_method("hybrid", None, coverage=True)
