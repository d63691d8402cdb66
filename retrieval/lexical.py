"""The lexical index: BM25 (``bm25s``) with English stemming and stopwords."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

from retrieval.errors import RetrievalError


class BM25Index:
    """BM25 over a list of texts; row ``i`` is text ``i``."""

    def __init__(self, model: bm25s.BM25 | None, size: int, language: str = "english") -> None:
        self.model = model
        self.size = size
        self.language = language
        self.stemmer = Stemmer.Stemmer(language)
        self._recent: dict[str, list[str]] = {}

    @classmethod
    def build(cls, texts: Sequence[str], language: str = "english") -> BM25Index:
        self = cls(None, len(texts), language)
        if texts:
            self.model = bm25s.BM25()
            self.model.index(self._tokens(texts), show_progress=False)
        return self

    def _tokens(self, texts: Sequence[str]) -> list[list[str]]:
        return bm25s.tokenize(list(texts), stopwords="en", stemmer=self.stemmer,
                              return_ids=False, show_progress=False)

    def query_tokens(self, query: str) -> list[str]:
        """The query's words as indexed; the last few queries are remembered, since one
        search asks each lexical index (and the coverage rerank) for the same query."""
        if query not in self._recent:
            if len(self._recent) > 64:
                self._recent.clear()
            self._recent[query] = self._tokens([query])[0]
        return self._recent[query]

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, rows) for one query; empty when no query word is indexed."""
        empty = np.zeros(0, np.float32), np.zeros(0, np.int64)
        if self.model is None:
            return empty
        tokens = [t for t in self.query_tokens(query) if t in self.model.vocab_dict]
        if not tokens:
            return empty
        scores = self.model.get_scores(tokens)
        k = min(k, self.size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((top, -scores[top]))]  # by score, ties by row: deterministic
        keep = scores[top] > 0
        return scores[top][keep].astype(np.float32), top[keep].astype(np.int64)

    def postings(self, query: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each distinct indexed query word: the rows holding it and their BM25 term
        weight without the IDF factor (term frequency saturated and length normalised), so a
        caller can apply an IDF of its own."""
        if self.model is None:
            return []
        vocab, sc = self.model.vocab_dict, self.model.scores
        out = []
        for t in dict.fromkeys(self.query_tokens(query)):
            if t not in vocab:
                continue
            a, b = sc["indptr"][vocab[t]], sc["indptr"][vocab[t] + 1]
            if a == b:
                continue
            rows = np.asarray(sc["indices"][a:b], np.int64)
            out.append((rows, np.asarray(sc["data"][a:b], np.float32) / idf(self.size, b - a)))
        return out

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self.model is not None:
            self.model.save(str(path), show_progress=False)

    @classmethod
    def load(cls, path: Path, size: int, language: str = "english") -> BM25Index:
        if not size:
            return cls(None, 0, language)
        try:
            model = bm25s.BM25.load(str(path), mmap=False)
        except (OSError, ValueError) as e:
            raise RetrievalError(f"cannot read BM25 index {path}: {e}") from e
        return cls(model, size, language)


def idf(n: int | np.ndarray, df: int | np.ndarray) -> np.ndarray:
    """BM25's (Lucene) inverse document frequency of a word in ``df`` of ``n`` texts."""
    return np.log1p((np.asarray(n, np.float32) - df + 0.5) / (np.asarray(df, np.float32) + 0.5))
