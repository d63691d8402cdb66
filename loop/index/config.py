"""The ``[index]`` section: how the corpus is indexed and searched (``IndexConfig``)."""

from __future__ import annotations

import hashlib
import json
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from loop.config import StageConfig
from loop.errors import ConfigError
from retrieval import DEFAULT_EMBEDDER, RetrievalError, Settings
from retrieval.fusion import valid_source_weights
from retrieval.methods import get_method, method_names

_DEFAULTS = Settings()


class IndexConfig(StageConfig):
    """How the corpus is indexed and searched."""

    section: ClassVar[str] = "index"

    omit_when_empty: ClassVar[frozenset[str]] = frozenset({"source_weights"})

    embedder: str = Field(DEFAULT_EMBEDDER, description="Embedder URI (st:NAME_OR_PATH).")
    dense_kind: Literal["auto", "flat", "hnsw", "ivf"] = Field(
        "auto", description="FAISS index: exact flat, HNSW or IVF; auto picks HNSW from 200k vectors."
    )
    unit_min_words: int = Field(
        _DEFAULTS.unit_min_words, ge=1,
        description="Sentences shorter than this join a neighbour before matching.")
    unit_max_words: int = Field(
        _DEFAULTS.unit_max_words, ge=4, description="Longer sentences are cut into parts.")
    window_words: int = Field(
        _DEFAULTS.window_words, ge=0,
        description="Words returned around a matched sentence (0: return its whole chunk).")
    distinct_windows: bool = Field(
        _DEFAULTS.distinct_windows,
        description="Windows from one document do not overlap: a window that would grow into "
                    "one already returned takes its words from the other side.")
    scored_windows: bool = Field(
        _DEFAULTS.scored_windows,
        description="A window slides (still holding its sentence) to hold the most other "
                    "matched sentences; off: centred on its sentence.")
    coverage_weight: float = Field(
        _DEFAULTS.coverage_weight, ge=0,
        description="Hybrid only: weight of query-word coverage (IDF share of the question's "
                    "words a window holds) when the first rerank_pool windows are reordered.")
    rerank_pool: int = Field(_DEFAULTS.rerank_pool, ge=1,
                             description="Windows reordered by coverage or the reranker.")
    reranker: str = Field(
        _DEFAULTS.reranker,
        description="Cross-encoder that reorders the first rerank_pool windows of any method "
                    "(ce:NAME_OR_PATH, a sentence-transformers CrossEncoder); empty: none.")
    fusion: Literal["rrf", "zscore"] = Field(
        _DEFAULTS.fusion, description="Hybrid fusion: reciprocal-rank or z-score.")
    rrf_k: float = Field(_DEFAULTS.rrf_k, gt=0, description="RRF constant k (smaller favours top ranks).")
    weights: dict[str, float] = Field(
        default_factory=lambda: dict(_DEFAULTS.weights),
        description="Hybrid weight per ranker: bm25, dense (sentences), bm25_chunk, dense_chunk, "
                    "bm25_local (sentences, IDF within their document; off by default).")
    candidates: int = Field(_DEFAULTS.candidates, ge=1, description="Candidates taken per ranker.")
    k: int = Field(5, ge=1, description="Hits retrieved per question (the RAG budget).")
    method: str = Field("hybrid", description="Default search method.")
    source_weights: dict[str, float] = Field(
        default_factory=dict,
        description="Preferred sources, {glob: weight}: a chunk whose title or source path "
                    "(or the path's tail after any /: notices/* matches docs/notices/a.txt) "
                    "matches a glob (fnmatch, case-insensitive) has its fused score multiplied "
                    "by the largest matching weight (> 0). Read when searching: no rebuild. "
                    "Flag: --prefer GLOB[=W], which replaces the config's (or the index's).")

    @classmethod
    def choices(cls) -> dict[str, list[str]]:
        return {"method": method_names()}

    @field_validator("source_weights")
    @classmethod
    def _positive_weights(cls, value: dict[str, float]) -> dict[str, float]:
        return valid_source_weights(value)

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        try:
            get_method(value)  # the registry of retrieval.methods
        except RetrievalError as e:
            raise ValueError(str(e)) from None
        return value

    def settings(self) -> Settings:
        values = self.resolved()
        for key in ("k", "method"):
            values.pop(key)
        try:
            return Settings(**values)
        except RetrievalError as e:
            raise ConfigError(f"[index] {e}") from e

    def build_digest(self) -> str:
        blob = json.dumps(self.settings().build_key(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]
