"""The retrieval index: BM25 and dense rankers over chunks and their sentence units,
fused, with persistence (a manifest beside the files) and incremental rebuilds.

Rankers: ``bm25`` / ``dense`` score sentence units, ``bm25_chunk`` / ``dense_chunk`` score
whole chunks (each unit inherits its chunk's rank), ``bm25_local`` scores sentence units with
BM25 whose IDF is counted among the sentences of the unit's own document: a word found all
over a paper (its topic) says little about which of its sentences answers, a word rare in it
says much. A method is a weighting of rankers;
the top units become hits, each a window of words around its unit. Rankers and methods are
registered in :mod:`retrieval.methods`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from retrieval.dense import DenseIndex, choose_kind
from retrieval.embedders import Embedder, get_embedder
from retrieval.errors import IndexMismatchError, RetrievalError
from retrieval.fusion import FUSIONS, Ranked, check_source_weights, fuse, source_weight
from retrieval.lexical import BM25Index, idf
from retrieval.methods import get_method, get_ranker, ranker_names
from retrieval.rerankers import Reranker, check_reranker_uri, get_reranker
from retrieval.units import Unit, Windows, documents, make_units

FORMAT = 1
CHUNK_FIELDS = ("chunk_id", "doc_id", "source", "title", "text", "start", "end")
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Settings:
    """How an index is built and searched (the ``loop`` stage config mirrors these)."""

    embedder: str = "st:all-MiniLM-L6-v2"
    dense_kind: str = "auto"
    unit_min_words: int = 8
    unit_max_words: int = 60
    window_words: int = 200
    distinct_windows: bool = True
    scored_windows: bool = True
    coverage_weight: float = 0.5
    rerank_pool: int = 20
    reranker: str = ""
    fusion: str = "zscore"
    rrf_k: float = 10.0
    weights: dict[str, float] = field(
        default_factory=lambda: {"bm25": 1.0, "dense": 1.0, "bm25_chunk": 1.0, "dense_chunk": 1.0}
    )
    candidates: int = 100
    # {glob on a chunk's source path or title: weight}; searching only, see ``fuse``
    source_weights: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise RetrievalError(f"unknown fusion '{self.fusion}' (known: {', '.join(FUSIONS)})")
        unknown = set(self.weights) - set(ranker_names())
        if unknown:
            raise RetrievalError(f"unknown rankers {sorted(unknown)} "
                                 f"(known: {', '.join(ranker_names())})")
        if self.reranker:
            check_reranker_uri(self.reranker)
        check_source_weights(self.source_weights)

    def build_key(self) -> dict[str, Any]:
        """The settings that change what is stored (the rest only change searching)."""
        return {"embedder": self.embedder, "dense_kind": self.dense_kind,
                "unit_min_words": self.unit_min_words, "unit_max_words": self.unit_max_words}


@dataclass(frozen=True)
class Hit:
    """One retrieved passage: the chunk its matched unit lies in, and the window returned."""

    chunk_id: str
    score: float
    text: str
    source: str
    title: str
    doc_id: str
    start: int
    end: int
    weight: float = 1.0  # the source weight its score was multiplied by

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BuildStats:
    chunks: int = 0
    units: int = 0
    embedded: int = 0
    reused: int = 0
    over_window: int = 0
    max_tokens: int = 0
    tokens_per_word: float = 0.0  # of the chunks, under the embedder's tokenizer
    window: int = 0  # the embedder's token window
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


class RetrievalIndex:
    """Build with :meth:`build`, reopen with :meth:`load`, query with :meth:`search`."""

    def __init__(self, settings: Settings, chunks: list[dict], units: list[Unit],
                 unit_vectors: np.ndarray, chunk_vectors: np.ndarray,
                 dense_units: DenseIndex, dense_chunks: DenseIndex,
                 bm25_units: BM25Index, bm25_chunks: BM25Index,
                 embedder: Embedder | None = None, meta: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self.chunks = chunks
        self.units = units
        self.unit_vectors, self.chunk_vectors = unit_vectors, chunk_vectors
        self.dense_units, self.dense_chunks = dense_units, dense_chunks
        self.bm25_units, self.bm25_chunks = bm25_units, bm25_chunks
        self._embedder = embedder
        self._reranker: Reranker | None = None
        self._query_vectors: dict[str, np.ndarray] = {}
        self._boosts: tuple[dict[str, float], np.ndarray, np.ndarray] | None = None
        self.meta = meta or {}
        self.stats = BuildStats(chunks=len(chunks), units=len(units))
        self.unit_chunk = np.array([u.chunk for u in units], dtype=np.int64)
        self.chunk_units = np.searchsorted(self.unit_chunk, np.arange(len(chunks) + 1))
        doc_row = {d: i for i, d in enumerate(dict.fromkeys(c["doc_id"] for c in chunks))}
        chunk_doc = np.array([doc_row[c["doc_id"]] for c in chunks], np.int64)
        self.unit_doc = chunk_doc[self.unit_chunk] if len(units) else np.zeros(0, np.int64)
        self.doc_row = doc_row
        self.unit_mid = np.array([(u.start + u.end) // 2 for u in units], np.int64)
        self.doc_units = np.bincount(self.unit_doc, minlength=len(doc_row))
        self.windows = Windows(documents(chunks))

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def build(cls, chunks: Sequence[dict], settings: Settings | None = None, *,
              embedder: Embedder | None = None, previous: RetrievalIndex | None = None,
              progress: Progress | None = None) -> RetrievalIndex:
        """Index ``chunks`` (dicts with the corpus chunk fields).

        With ``previous`` (an index built with the same embedder), vectors of texts it
        already holds are reused, so only new or changed chunks are embedded.
        """
        t0 = time.perf_counter()
        settings = settings or Settings()
        chunks = [{k: c[k] for k in CHUNK_FIELDS} for c in chunks]
        embedder = embedder or get_embedder(settings.embedder)
        units = make_units(chunks, settings.unit_min_words, settings.unit_max_words)
        docs = documents(chunks)
        unit_texts = [docs[chunks[u.chunk]["doc_id"]][u.start : u.end] for u in units]
        chunk_texts = [c["text"] for c in chunks]
        cache = previous._vector_cache(embedder) if previous is not None else {}
        stats = BuildStats(chunks=len(chunks), units=len(units))
        vectors = _embed_missing(embedder, unit_texts + chunk_texts, cache, stats, progress)
        unit_vectors, chunk_vectors = vectors[: len(units)], vectors[len(units) :]
        _check_window(embedder, chunk_texts, stats)
        if progress:
            progress("lexical", 0, 1)
        index = cls(
            settings, chunks, units, unit_vectors, chunk_vectors,
            DenseIndex.build(unit_vectors, settings.dense_kind),
            DenseIndex.build(chunk_vectors, choose_kind(settings.dense_kind, len(chunks))),
            BM25Index.build(unit_texts), BM25Index.build(chunk_texts), embedder,
        )
        if progress:
            progress("lexical", 1, 1)
        stats.seconds = time.perf_counter() - t0
        index.stats = stats
        return index

    def _vector_cache(self, embedder: Embedder) -> dict[str, np.ndarray]:
        if self.settings.embedder != embedder.uri:
            return {}  # vectors of another model are no use
        docs = self.windows.docs
        keys = [text_key(docs[self.chunks[u.chunk]["doc_id"]][u.start : u.end]) for u in self.units]
        keys += [text_key(c["text"]) for c in self.chunks]
        vectors = np.concatenate([self.unit_vectors, self.chunk_vectors])
        return dict(zip(keys, vectors, strict=True))

    # -- searching ---------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder(self.settings.embedder)
        return self._embedder

    def search(self, query: str, k: int = 5, method: str = "hybrid") -> list[Hit]:
        """The top ``k`` hits for ``query``: windows around the best-matching units."""
        spec = get_method(method)
        weights = {n: w for n, w in spec.weights_for(self.settings).items() if w}
        if not self.units or not query.strip() or k < 1:
            return []
        qv = None
        if any(get_ranker(n).needs_vector for n in weights):
            qv = self._query_vectors.get(query)
            qv = self.embedder.embed([query]) if qv is None else qv[None, :]
        lists = {name: self._rank(name, query, qv) for name in weights}
        ids, scores = fuse(lists, weights, fusion=self.settings.fusion, rrf_k=self.settings.rrf_k,
                           boost=self.unit_weights())
        cover = self.settings.coverage_weight if spec.coverage else 0.0
        if self.settings.window_words <= 0:
            cover = 0.0
        if not cover and not self.settings.reranker:
            return self._hits(ids, scores, k)
        pool = self._hits(ids, scores, max(k, self.settings.rerank_pool))
        if self.settings.reranker:
            return self._cross_rerank(query, pool)[:k]
        return self._rerank(query, pool, cover)[:k]

    def chunk_weights(self) -> np.ndarray | None:
        """Each chunk's source weight under ``Settings.source_weights`` (None when there are
        none: searching is then exactly as without the feature). Read at search time, so new
        weights need no rebuild; worked out once per distinct source and title."""
        wanted = self.settings.source_weights
        if not wanted:
            return None
        if self._boosts is None or self._boosts[0] != wanted:
            of: dict[tuple[str, str], float] = {}
            for c in self.chunks:
                key = (c["source"], c["title"])
                if key not in of:
                    of[key] = source_weight(*key, wanted)
            per_chunk = np.array([of[(c["source"], c["title"])] for c in self.chunks], np.float64)
            self._boosts = (dict(wanted), per_chunk, per_chunk[self.unit_chunk])
        return self._boosts[1]

    def unit_weights(self) -> np.ndarray | None:
        """:meth:`chunk_weights` per sentence unit (what fusion ranks)."""
        return None if self.chunk_weights() is None else self._boosts[2]

    def prepare_queries(self, queries: Sequence[str]) -> None:
        """Embed many queries in one batch (an evaluation's questions): one batched call is
        much faster than one call per query, and repeated searches reuse the vectors."""
        todo = [q for q in dict.fromkeys(queries) if q not in self._query_vectors]
        if todo:
            self._query_vectors.update(zip(todo, self.embedder.embed(todo), strict=True))

    def _rank(self, name: str, query: str, qv: np.ndarray | None) -> Ranked:
        """Ranker ``name``'s best ``Settings.candidates`` units (``qv``: the query's vector,
        (1, dim), when the ranker needs it)."""
        return get_ranker(name).rank(self, query, qv, self.settings.candidates)

    def chunks_to_units(self, rows: np.ndarray, scores: np.ndarray) -> Ranked:
        """Each unit of a ranked chunk takes the chunk's rank and score (for rankers that
        score whole chunks)."""
        starts, ends = self.chunk_units[rows], self.chunk_units[rows + 1]
        counts = ends - starts
        # unit ids of every ranked chunk, in rank order: each run starts at its chunk's first
        first = np.repeat(starts - np.cumsum(counts) + counts, counts)
        ids = first + np.arange(int(counts.sum()), dtype=np.int64)
        return Ranked(ids.astype(np.int64), np.repeat(scores, counts),
                      np.repeat(np.arange(len(rows)), counts))

    def _hits(self, ids: np.ndarray, scores: np.ndarray, k: int) -> list[Hit]:
        hits: list[Hit] = []
        taken: list[tuple[str, int, int]] = []
        matched = self._matched(ids, scores)
        weights = self.chunk_weights()
        for uid, score in zip(ids.tolist(), scores.tolist(), strict=True):
            unit = self.units[uid]
            chunk = self.chunks[unit.chunk]
            doc = chunk["doc_id"]
            mid = (unit.start + unit.end) // 2
            if any(d == doc and a <= mid < b for d, a, b in taken):
                continue  # already inside a returned window
            a, b = self._span(unit, chunk, [(x, y) for d, x, y in taken if d == doc],
                              matched.get(doc, ()))
            taken.append((doc, a, b))
            hits.append(Hit(chunk["chunk_id"], float(score), self.windows.docs[doc][a:b],
                            chunk["source"], chunk["title"], doc, a, b,
                            1.0 if weights is None else float(weights[unit.chunk])))
            if len(hits) == k:
                break
        return hits

    def _matched(self, ids: np.ndarray, scores: np.ndarray,
                 top: int = 50) -> dict[str, list[tuple[int, int, float]]]:
        """The best ``top`` fused units per document, weighted by how far their score lies
        above the ``top``-th: what a scored window tries to hold."""
        if not self.settings.scored_windows or not len(ids):
            return {}
        floor = float(scores[min(top, len(scores)) - 1])
        out: dict[str, list[tuple[int, int, float]]] = {}
        for uid, score in zip(ids[:top].tolist(), scores[:top].tolist(), strict=True):
            unit = self.units[uid]
            out.setdefault(self.chunks[unit.chunk]["doc_id"], []).append(
                (unit.start, unit.end, score - floor))
        return out

    @property
    def reranker(self) -> Reranker:
        if self._reranker is None or self._reranker.uri != self.settings.reranker:
            self._reranker = get_reranker(self.settings.reranker)
        return self._reranker

    def _cross_rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        """The named cross-encoder's order; each hit's score becomes the model's. Source
        weights shaped the pool it reorders and break its ties, but its order stands: its
        scores have no scale (a logit, a probability) that a weight could multiply."""
        scores = self.reranker.score(query, [h.text for h in hits])
        return [replace(hits[i], score=float(scores[i]))
                for i in np.argsort(-scores, kind="stable")]

    def _rerank(self, query: str, hits: list[Hit], weight: float) -> list[Hit]:
        """Reorder windows by fused score plus ``weight`` times query coverage (both
        standardised): the share of the query's IDF mass whose words the window holds.

        A unit can match a question's topic words alone (a paper's title matches every
        question about that paper); the window that holds the rest of the question's words
        too is the likelier answer. Term coverage over a passage is cheap and has no
        parameters to learn, so it is computed here rather than with a cross-encoder.
        """
        terms = [(rows, float(idf(self.bm25_units.size, len(rows))))
                 for rows, _ in self.bm25_units.postings(query)]
        total = sum(w for _, w in terms)
        if len(hits) < 2 or not total:
            return hits
        fused = np.array([h.score for h in hits], np.float64)
        # A window holds a word when a sentence unit holding it has its middle inside the
        # window: read off the BM25 postings, no re-tokenising of the windows.
        docs = np.array([self.doc_row[h.doc_id] for h in hits])[:, None]
        starts = np.array([h.start for h in hits])[:, None]
        ends = np.array([h.end for h in hits])[:, None]
        cover = np.zeros(len(hits))
        for rows, term_idf in terms:
            mid, doc = self.unit_mid[rows][None, :], self.unit_doc[rows][None, :]
            held = ((doc == docs) & (mid >= starts) & (mid < ends)).any(axis=1)
            cover += term_idf * held
        cover /= total
        key = _standard(fused) + weight * _standard(cover)
        return [hits[i] for i in np.argsort(-key, kind="stable")]

    def _span(self, unit: Unit, chunk: dict, taken: list[tuple[int, int]],
              matched: Sequence[tuple[int, int, float]] = ()) -> tuple[int, int]:
        if self.settings.window_words <= 0:  # plain chunks, no small-to-big window
            return chunk["start"], chunk["end"]
        return self.windows.around(chunk["doc_id"], unit.start, unit.end,
                                   self.settings.window_words,
                                   taken if self.settings.distinct_windows else (), matched)

    # -- persistence -------------------------------------------------------------------------

    def save(self, path: str | Path, **meta: Any) -> None:
        """Write the index into the folder ``path`` (created); ``meta`` joins the manifest."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(self.chunks), path / "chunks.parquet")
        pq.write_table(pa.table({
            "chunk": self.unit_chunk,
            "start": np.array([u.start for u in self.units], np.int64),
            "end": np.array([u.end for u in self.units], np.int64),
        }), path / "units.parquet")
        np.save(path / "unit_vectors.npy", self.unit_vectors)
        np.save(path / "chunk_vectors.npy", self.chunk_vectors)
        self.dense_units.save(path / "dense_units.faiss")
        self.dense_chunks.save(path / "dense_chunks.faiss")
        self.bm25_units.save(path / "bm25_units")
        self.bm25_chunks.save(path / "bm25_chunks")
        manifest = {
            "format": FORMAT,
            "embedder": self.settings.embedder,
            "dim": int(self.unit_vectors.shape[1]) if self.unit_vectors.ndim == 2 else 0,
            "dense_kind": {"units": self.dense_units.kind, "chunks": self.dense_chunks.kind},
            "chunks": len(self.chunks),
            "units": len(self.units),
            "chunk_ids_sha": chunk_ids_digest(c["chunk_id"] for c in self.chunks),
            "settings": asdict(self.settings),
            **self.meta,
            **meta,
        }
        (path / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path, *, embedder: Embedder | None = None,
             settings: Settings | None = None) -> RetrievalIndex:
        """Reopen a saved index without embedding anything. ``settings`` may change how it
        is searched (fusion, weights, window) but not what was built."""
        path = Path(path)
        try:
            manifest = json.loads((path / "manifest.json").read_text())
        except (OSError, ValueError) as e:
            raise IndexMismatchError(f"no readable index manifest in {path}: {e}") from e
        if manifest.get("format") != FORMAT:
            raise IndexMismatchError(f"index {path} has format {manifest.get('format')}, "
                                     f"this version reads {FORMAT}: rebuild it")
        stored = Settings(**manifest["settings"])
        settings = settings or stored
        if settings.build_key() != stored.build_key():
            raise IndexMismatchError(f"index {path} was built with {stored.build_key()}, "
                                     f"not {settings.build_key()}: rebuild it")
        if embedder is not None and embedder.uri != stored.embedder:
            raise IndexMismatchError(f"index {path} holds vectors of {stored.embedder}, "
                                     f"not {embedder.uri}")
        chunks = pq.read_table(path / "chunks.parquet").to_pylist()
        ut = pq.read_table(path / "units.parquet").to_pydict()
        units = [Unit(c, a, b) for c, a, b in zip(ut["chunk"], ut["start"], ut["end"], strict=True)]
        kinds = manifest["dense_kind"]
        meta = {k: v for k, v in manifest.items() if k not in _MANIFEST_OWN}
        return cls(
            settings, chunks, units,
            np.load(path / "unit_vectors.npy"), np.load(path / "chunk_vectors.npy"),
            DenseIndex.load(path / "dense_units.faiss", kinds["units"]),
            DenseIndex.load(path / "dense_chunks.faiss", kinds["chunks"]),
            BM25Index.load(path / "bm25_units", len(units)),
            BM25Index.load(path / "bm25_chunks", len(chunks)),
            embedder, meta,
        )


_MANIFEST_OWN = {"format", "embedder", "dim", "dense_kind", "chunks", "units", "chunk_ids_sha",
                 "settings"}


def _standard(x: np.ndarray) -> np.ndarray:
    std = float(x.std())
    return (x - x.mean()) / std if std > 1e-12 else np.zeros_like(x)


def chunk_ids_digest(ids: Sequence[str] | Any) -> str:
    h = hashlib.sha256()
    for i in ids:
        h.update(i.encode() + b"\n")
    return h.hexdigest()[:16]


def _embed_missing(embedder: Embedder, texts: list[str], cache: dict[str, np.ndarray],
                   stats: BuildStats, progress: Progress | None) -> np.ndarray:
    keys = [text_key(t) for t in texts]
    todo = sorted({k: i for i, k in reversed(list(enumerate(keys))) if k not in cache}.values())
    stats.embedded, stats.reused = len(todo), len(texts) - len(todo)
    fresh: dict[str, np.ndarray] = {}
    if todo:
        def report(done: int, total: int) -> None:
            if progress:
                progress("embed", done, total)

        report(0, len(todo))
        vecs = embedder.embed([texts[i] for i in todo], progress=report)
        fresh = {keys[i]: v for i, v in zip(todo, vecs, strict=True)}
    dim = embedder.dim
    out = np.empty((len(texts), dim), dtype=np.float32)
    for row, k in enumerate(keys):
        out[row] = fresh[k] if k in fresh else cache[k]
    return out


def _check_window(embedder: Embedder, texts: list[str], stats: BuildStats) -> None:
    """Chunks longer than the embedder's window are truncated by it: count them, say so."""
    if not texts:
        return
    counts = embedder.count_tokens(texts)
    stats.max_tokens = max(counts)
    stats.window = int(embedder.max_tokens)
    stats.over_window = sum(c > embedder.max_tokens for c in counts)
    # Chunking estimates tokens as words x tokens_per_word; this text's real ratio under the
    # embedder's tokenizer tells the setting that keeps its chunks inside the window.
    stats.tokens_per_word = round(sum(counts) / max(sum(len(t.split()) for t in texts), 1), 3)
    if stats.over_window:
        stats.warnings.append(
            f"{stats.over_window} of {len(texts)} chunks exceed the embedder's "
            f"{embedder.max_tokens}-token window (longest {stats.max_tokens}); their tails are "
            f"not embedded (sentence units still are). This text has "
            f"{stats.tokens_per_word:.2f} tokens per word under the embedder's tokenizer."
        )
