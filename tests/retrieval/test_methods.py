"""The ranker and method registries: built-in results unchanged, a plugin ranker + method."""

import numpy as np
import pytest

from retrieval import (
    RetrievalError,
    RetrievalIndex,
    Settings,
    method_names,
    ranker_names,
    register_method,
    register_ranker,
)
from retrieval.fusion import Ranked
from retrieval.methods import get_method, unregister

from .conftest import TOPICS, chunk

SETTINGS = Settings(embedder="fake:test", window_words=40)
LONG = " ".join(f"Ferry note {i} says little about the pier." for i in range(30))
QUERIES = ["when does the ferry leave", "borrow books", "glass recycling box",
           "yacht mooring fee", "dog lead rose garden", "lighthouse", "ferry ticket code"]

# (doc_id, score to 4 places, window start, end) of the top 3 hits of each query, as the
# if-chains before the registry returned them.
EXPECTED = {
    'bm25': [
        [('ferry', 10.953, 0, 127), ('notes', -0.2716, 1072, 1282), ('notes', -0.3456, 0, 204)],
        [('library', 2.0, 0, 121)],
        [('bins', 2.0, 0, 126)],
        [('harbour', 2.0, 0, 129)],
        [('parks', 2.0, 0, 108), ('bins', -2.0, 0, 126)],
        [('harbour', 2.0, 0, 129)],
        [('ferry', 7.1273, 0, 127), ('notes', 4.9822, 1072, 1282), ('notes', -0.4086, 0, 204)],
    ],
    'dense': [
        [('ferry', 6.4089, 0, 127), ('notes', 1.4257, 82, 286), ('notes', 1.1855, 830, 1039)],
        [('library', 9.5113, 0, 121), ('parks', 4.2472, 0, 108), ('ferry', 2.0696, 0, 127)],
        [('bins', 7.8086, 0, 126), ('notes', 1.2257, 620, 829), ('notes', 0.7629, 998, 1207)],
        [('harbour', 4.3399, 0, 129), ('bins', 2.2144, 0, 126), ('notes', 1.3171, 998, 1207)],
        [('parks', 7.4531, 0, 108), ('bins', 4.1394, 0, 126), ('library', 2.3794, 0, 121)],
        [('harbour', 6.0482, 0, 129), ('notes', 1.5096, 410, 619), ('notes', 1.404, 704, 913)],
        [('notes', 3.1997, 1072, 1282), ('notes', 1.7419, 205, 409), ('notes', 1.2385, 494, 703)],
    ],
    'hybrid': [
        [('ferry', 17.3619, 0, 127), ('notes', 1.0801, 82, 286), ('notes', 0.8956, 1072, 1282)],
        [('library', 11.5113, 0, 121), ('parks', 4.2472, 0, 108), ('ferry', 2.0696, 0, 127)],
        [('bins', 9.8086, 0, 126), ('notes', 1.2257, 620, 829), ('notes', 0.7629, 998, 1207)],
        [('harbour', 6.3399, 0, 129), ('bins', 2.2144, 0, 126), ('notes', 1.3171, 998, 1207)],
        [('parks', 9.4531, 0, 108), ('bins', 2.1394, 0, 126), ('library', 0.3794, 0, 121)],
        [('harbour', 8.0482, 0, 129), ('notes', 1.5096, 410, 619), ('notes', 1.404, 704, 913)],
        [('notes', 8.1819, 1072, 1282), ('ferry', 6.0738, 0, 127), ('notes', 1.3333, 205, 409)],
    ],
}


@pytest.fixture
def corpus() -> list[dict]:
    return [*(chunk(n, 0, t) for n, t in TOPICS.items()),
            chunk("notes", 0, LONG + " The ferry ticket code is walrus.")]


@pytest.fixture
def toy():
    """A plugin's ranker and methods, removed again after the test."""
    seen: list = []

    @register_ranker("toy_longest")
    def _longest(index, query, qv, n):  # units holding a query word, longest first
        seen.append(qv)
        words = set(query.lower().split())
        docs = index.windows.docs
        lengths = np.array([len(docs[index.chunks[u.chunk]["doc_id"]][u.start : u.end])
                            if words & set(docs[index.chunks[u.chunk]["doc_id"]][u.start : u.end]
                                           .lower().split()) else 0 for u in index.units])
        rows = np.flatnonzero(lengths)
        rows = rows[np.lexsort((rows, -lengths[rows]))][:n]
        return Ranked.of(rows, lengths[rows].astype(np.float32))

    @register_ranker("toy_vector", needs_vector=True)
    def _vector(index, query, qv, n):
        seen.append(qv)
        return Ranked.of(np.arange(min(n, len(index.units))), np.zeros(min(n, len(index.units))))

    register_method("toy", {"toy_longest": 1.0})
    register_method("toy_mix", {"toy_longest": 1.0, "bm25": 1.0})
    yield seen
    for name in ("toy", "toy_mix", "toy_longest", "toy_vector"):
        unregister(name)


def test_builtin_methods_give_the_results_they_gave_before_the_registry(corpus):
    index = RetrievalIndex.build(corpus, SETTINGS)
    for method, expected in EXPECTED.items():
        got = [[(h.doc_id, round(h.score, 4), h.start, h.end) for h in index.search(q, 3, method)]
               for q in QUERIES]
        assert got == expected, method


def test_builtin_names_in_order():
    assert method_names(rankers=False) == ["bm25", "dense", "hybrid"]
    assert ranker_names() == ["bm25", "dense", "bm25_chunk", "dense_chunk", "bm25_local"]
    assert method_names() == ["bm25", "dense", "hybrid", "bm25_chunk", "dense_chunk", "bm25_local"]
    assert get_method("hybrid").coverage and not get_method("bm25").coverage
    assert get_method("bm25").weights_for(SETTINGS) == {"bm25": 1.0, "bm25_chunk": 1.0}
    assert get_method("bm25_local").weights_for(SETTINGS) == {"bm25_local": 1.0}
    assert get_method("hybrid").weights_for(SETTINGS) == SETTINGS.weights


def test_unknown_method_names_every_known_one(corpus):
    index = RetrievalIndex.build(corpus, SETTINGS)
    with pytest.raises(RetrievalError, match=r"unknown method 'splade' \(known: bm25, dense, "
                                             r"hybrid, bm25_chunk, dense_chunk, bm25_local\)"):
        index.search("ferry", 3, "splade")
    with pytest.raises(RetrievalError, match="unknown rankers"):
        register_method("broken", {"bm25": 1.0, "splade": 1.0})
    assert "broken" not in method_names()


def test_a_registered_ranker_and_method_search_like_the_built_ins(corpus, toy, fake_embedder):
    assert {"toy", "toy_mix"} <= set(method_names(rankers=False))
    assert {"toy_longest", "toy_vector"} <= set(method_names())
    index = RetrievalIndex.build(corpus, SETTINGS)
    calls = sum(len(e.calls) for e in fake_embedder)
    hits = index.search("ferry ticket", 2, "toy")
    assert [h.doc_id for h in hits] == ["ferry", "notes"]
    top = index._rank("toy_longest", "ferry ticket", None)
    unit = index.units[int(top.ids[0])]
    assert index.chunks[unit.chunk]["doc_id"] == "ferry"
    assert top.scores[0] == unit.end - unit.start == len(TOPICS["ferry"])  # one merged unit
    assert (np.diff(top.scores) <= 0).all()
    assert toy == [None, None]  # the query was not embedded: no ranker of "toy" needs its vector
    assert sum(len(e.calls) for e in fake_embedder) == calls
    assert index.search("ferry ticket", 2, "toy_mix")[0].doc_id == "ferry"
    assert index.search("ferry", 1, "toy_longest")  # a ranker is a method of its own
    index.search("ferry", 1, "toy_vector")
    assert toy[-1].shape == (1, 64)  # embedded for a ranker that asks
    # The configured (hybrid) weights may name it too.
    index.settings = Settings(embedder="fake:test", window_words=40,
                              weights={"bm25": 1.0, "toy_longest": 0.5})
    assert index.search("ferry ticket", 1, "hybrid")[0].doc_id == "ferry"


def test_methods_registered_later_with_the_configured_weights(corpus, toy):
    register_method("toy_hybrid_plain", None)  # hybrid's weights, no coverage rerank
    try:
        index = RetrievalIndex.build(corpus, SETTINGS)
        plain = Settings(embedder="fake:test", window_words=40, coverage_weight=0.0)
        ours = index.search("ferry ticket code", 3, "toy_hybrid_plain")
        index.settings = plain
        assert ours == index.search("ferry ticket code", 3, "hybrid")
    finally:
        unregister("toy_hybrid_plain")
