"""The dense index: FAISS inner product over normalised vectors (so, cosine).

Exact ``IndexFlatIP`` by default; HNSW or IVF for large corpora, where an exact scan per
query gets slow (about 100k vectors and up on a CPU).
"""

from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np

from retrieval.errors import RetrievalError

KINDS = ("auto", "flat", "hnsw", "ivf")
# Below this many vectors an exact scan answers in a few ms on a CPU: no reason to approximate.
AUTO_ANN_MIN = 200_000


def choose_kind(kind: str, n: int) -> str:
    if kind not in KINDS:
        raise RetrievalError(f"unknown dense index kind '{kind}' (known: {', '.join(KINDS)})")
    if kind != "auto":
        return kind
    return "hnsw" if n >= AUTO_ANN_MIN else "flat"


class DenseIndex:
    """A FAISS index whose row ``i`` is vector ``i`` of the matrix it was built from."""

    def __init__(self, index: faiss.Index, kind: str) -> None:
        self.index = index
        self.kind = kind

    @classmethod
    def build(cls, vectors: np.ndarray, kind: str = "auto", *, hnsw_m: int = 32,
              ef_search: int = 128, nprobe: int = 16,
              ef_construction: int | None = None) -> DenseIndex:
        """Build an index of ``kind`` (``auto`` picks by size) over ``vectors``.

        ``ef_construction`` defaults to ``2 * ef_search``; lower it to build a large HNSW
        graph faster at some cost in recall (see docs/benchmarks.md, "Large indexes").
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        kind = choose_kind(kind, n)
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction or 2 * ef_search
            index.hnsw.efSearch = ef_search
        elif kind == "ivf":
            nlist = max(1, min(int(4 * math.sqrt(n)), n // 39 or 1))  # FAISS wants ~39 points per list
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist,
                                       faiss.METRIC_INNER_PRODUCT)
            index.train(vectors)
            index.nprobe = min(nprobe, nlist)
        else:
            index = faiss.IndexFlatIP(dim)
        if n:
            index.add(vectors)
        return cls(index, kind)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, rows) per query; rows of -1 pad a short answer."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, self.size))
        if not self.size:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        return self.index.search(queries, k)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, kind: str) -> DenseIndex:
        try:
            return cls(faiss.read_index(str(path)), kind)
        except RuntimeError as e:
            raise RetrievalError(f"cannot read FAISS index {path}: {e}") from e
