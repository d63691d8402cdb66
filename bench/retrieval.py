"""Retrieval speed, each figure a ratio against a baseline measured in the same run.

    .venv/bin/python bench/retrieval.py [--texts 512] [--sizes 10000,100000]

1. Embedding throughput: the ``st:`` embedder vs raw ``SentenceTransformer.encode`` on the
   same chunk texts (goal >= 0.9x); and a whole index build (which also embeds every
   sentence unit) in chunks/s, for scale.
2. Re-index of an unchanged corpus (the ``index`` stage, a cache hit) vs the cold build
   (goal <= 5%), and after one changed document (only its text is embedded).
3. Query latency p50/p99 at 10k and 100k chunks: one dense ranker, and the full dense and
   hybrid methods, vs the raw FAISS ``search`` call on the same vectors (goal <= 1.2x).
   Vectors are random unit vectors and the query vector is fixed, so only index work counts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import faiss
import numpy as np

from retrieval import RetrievalIndex, Settings, get_embedder, register_embedder

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "marrowick"


def example_texts(n: int, words: int = 130) -> list[str]:
    pool = " ".join(p.read_text(errors="replace") for p in sorted(EXAMPLE.rglob("*.md")))
    tokens = pool.split()
    return [" ".join(tokens[(i * 37) % max(len(tokens) - words, 1):][:words]) for i in range(n)]


def bench_throughput(n: int) -> None:
    emb = get_embedder()
    texts = example_texts(n)
    emb.embed(texts[:64])  # warm-up
    t = time.perf_counter()
    emb.model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    raw = time.perf_counter() - t
    t = time.perf_counter()
    emb.embed(texts)
    ours = time.perf_counter() - t
    print(f"embed {n} chunks: raw encode {n / raw:.1f}/s, st: embedder {n / ours:.1f}/s "
          f"-> {raw / ours:.2f}x")
    chunks = [{"chunk_id": str(i), "doc_id": str(i), "source": "s", "title": "t", "text": x,
               "start": 0, "end": len(x)} for i, x in enumerate(texts)]
    t = time.perf_counter()
    index = RetrievalIndex.build(chunks, Settings(), embedder=emb)
    build = time.perf_counter() - t
    print(f"index build {n} chunks ({index.stats.units} units embedded too): "
          f"{n / build:.1f} chunks/s -> {raw / build:.2f}x raw encode of the chunks")


def bench_reindex() -> None:
    from loop.index import IndexConfig, build_index
    from loop.ingest import ingest
    from loop.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        for p in sorted(EXAMPLE.rglob("*.md")):
            (docs / p.name).write_text(p.read_text())
        with Workspace(Path(tmp) / "ws") as ws:
            ingest(ws, [docs])
            t = time.perf_counter()
            cold = build_index(ws, IndexConfig())
            cold_s = time.perf_counter() - t
            t = time.perf_counter()
            warm = build_index(ws, IndexConfig())
            warm_s = time.perf_counter() - t
            first = sorted(docs.iterdir())[0]
            first.write_text(first.read_text() + "\n\nA new closing paragraph was added here.\n")
            ingest(ws, [docs])
            t = time.perf_counter()
            inc = build_index(ws, IndexConfig())
            inc_s = time.perf_counter() - t
        print(f"index {cold.chunks} chunks cold {cold_s:.2f} s; unchanged re-index "
              f"{warm_s * 1000:.0f} ms (cached={warm.cached}) -> {warm_s / cold_s:.1%} of cold; "
              f"one doc changed {inc_s:.2f} s ({inc.embedded} embedded, {inc.reused} reused) "
              f"-> {inc_s / cold_s:.1%} of cold")


class FixedEmbedder:
    """Returns one fixed unit vector: query latency without the model's share."""

    max_tokens = 10**6

    def __init__(self, name: str) -> None:
        self.uri, self.dim = f"fixed:{name}", 384
        self.vec = np.random.default_rng(0).standard_normal((1, 384)).astype(np.float32)
        self.vec /= np.linalg.norm(self.vec)

    def embed(self, texts, *, progress=None):
        return np.repeat(self.vec, len(texts), 0)

    def count_tokens(self, texts):
        return [1] * len(texts)


def synthetic_index(n: int) -> RetrievalIndex:
    rng = np.random.default_rng(n)
    vocab = [f"w{i}" for i in range(5000)]
    chunks = []
    for i in range(n):
        text = " ".join(rng.choice(vocab, 12)) + "."
        chunks.append({"chunk_id": str(i), "doc_id": str(i), "source": "s", "title": "t",
                       "text": text, "start": 0, "end": len(text)})
    vecs = rng.standard_normal((n, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)

    class Prebuilt(FixedEmbedder):  # hands back the prepared vectors in build order
        def embed(self, texts, *, progress=None):
            if len(texts) == 2 * n:  # one unit per chunk: units, then chunks
                return np.concatenate([vecs, vecs])
            return super().embed(texts)

    register_embedder("fixed", Prebuilt)
    return RetrievalIndex.build(chunks, Settings(embedder="fixed:x", dense_kind="flat"))


def percentiles(fn, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def bench_latency(sizes: list[int], repeats: int = 200) -> None:
    # One query at a time: FAISS's OpenMP threads only add spin-wait noise on a shared box.
    faiss.omp_set_num_threads(1)
    for n in sizes:
        index = synthetic_index(n)
        q = index.embedder.embed(["q"])
        raw = faiss.IndexFlatIP(384)
        raw.add(index.chunk_vectors)
        raw_units = faiss.IndexFlatIP(384)
        raw_units.add(index.unit_vectors)
        cand = index.settings.candidates
        base = percentiles(lambda raw=raw, q=q: raw.search(q, 5), repeats)
        print(f"{n} chunks: raw FAISS search p50 {base[0]:.2f} ms p99 {base[1]:.2f} ms")

        def dense_calls(q=q, raw=raw, raw_units=raw_units, cand=cand):
            raw_units.search(q, cand)
            raw.search(q, cand)

        def hybrid_calls(index=index, dense_calls=dense_calls, cand=cand):
            dense_calls()
            index.bm25_units.search("w1 w2 w3", cand)
            index.bm25_chunks.search("w1 w2 w3", cand)

        # The same method's own raw calls (its FAISS searches of `candidates` each, and for
        # the hybrid two BM25 searches): the ratio to them is what fusion and windows add.
        own = {"dense_chunk": percentiles(lambda raw=raw, q=q, c=cand: raw.search(q, c), repeats),
               "dense": percentiles(dense_calls, repeats),
               "hybrid": percentiles(hybrid_calls, repeats)}
        for method in ("dense_chunk", "dense", "hybrid"):
            ours = percentiles(lambda m=method, index=index: index.search("w1 w2 w3", 5, m), repeats)
            print(f"  {method:11s} p50 {ours[0]:.2f} ms ({ours[0] / base[0]:.2f}x) "
                  f"p99 {ours[1]:.2f} ms ({ours[1] / base[1]:.2f}x); its raw calls p50 "
                  f"{own[method][0]:.2f} ms -> {ours[0] / own[method][0]:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=512)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--only", choices=["throughput", "reindex", "latency"])
    a = ap.parse_args()
    if a.only in (None, "throughput"):
        bench_throughput(a.texts)
    if a.only in (None, "reindex"):
        bench_reindex()
    if a.only in (None, "latency"):
        bench_latency([int(s) for s in a.sizes.split(",")])


if __name__ == "__main__":
    main()
