"""The retrieval index with a fake embedder: search, persistence, incremental updates."""

import json
import subprocess
import sys

import pytest

from retrieval import (
    IndexMismatchError,
    RetrievalError,
    RetrievalIndex,
    Settings,
    UnknownEmbedderError,
    get_embedder,
)
from retrieval.units import sentence_spans

from .conftest import TOPICS, chunk

FAKE = Settings(embedder="fake:test", window_words=40)
QUERIES = ["when does the ferry leave", "borrow books", "glass recycling box",
           "yacht mooring fee", "dog lead rose garden", "lighthouse"]


def results(index, method="hybrid", k=3):
    return [[(h.chunk_id, round(h.score, 5), h.text) for h in index.search(q, k, method)]
            for q in QUERIES]


@pytest.mark.parametrize("method", ["bm25", "dense", "hybrid"])
def test_each_method_finds_the_topic(chunks, method):
    index = RetrievalIndex.build(chunks, FAKE)
    hits = index.search("how much does the ferry ticket cost", 2, method)
    assert hits[0].doc_id == "ferry"
    assert "four crowns" in hits[0].text
    assert hits[0].source == "ferry.md" and hits[0].title == "ferry"


def test_hit_is_a_window_around_the_matched_sentence(chunks):
    long_doc = " ".join(f"Filler sentence number {i} says nothing." for i in range(60))
    long_doc += " The secret code is walrus."
    index = RetrievalIndex.build([*chunks, chunk("long", 0, long_doc)],
                                 Settings(embedder="fake:t", window_words=30, unit_max_words=12))
    hit = index.search("secret code walrus", 1, "bm25")[0]
    assert "walrus" in hit.text and len(hit.text.split()) <= 30
    chunk_mode = Settings(embedder="fake:t", window_words=0, unit_max_words=12)
    index.settings = chunk_mode
    assert index.search("secret code walrus", 1, "bm25")[0].text == long_doc


def test_persisted_index_reloads_to_identical_results(chunks, tmp_path, fake_embedder):
    index = RetrievalIndex.build(chunks, FAKE)
    index.save(tmp_path / "ix", corpus_id="c1")
    calls = len(fake_embedder)
    again = RetrievalIndex.load(tmp_path / "ix")
    for method in ("bm25", "dense", "hybrid"):
        assert results(again, method) == results(index, method)
    assert again.meta["corpus_id"] == "c1"
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["embedder"] == "fake:test" and manifest["chunks"] == len(chunks)
    assert manifest["dim"] == 64 and manifest["chunk_ids_sha"]
    assert sum(e.calls != [] for e in fake_embedder[calls:]) <= 1  # only query embeddings


def test_incremental_update_equals_full_rebuild(chunks, fake_embedder):
    old = RetrievalIndex.build(chunks, FAKE)
    changed = [c for c in chunks if c["doc_id"] != "bins"]  # one removed
    changed[0] = chunk("ferry", 0, TOPICS["ferry"] + " Dogs ride for one crown.")  # one changed
    changed.append(chunk("museum", 0, "The town museum shows ship models and old maps."))
    incremental = RetrievalIndex.build(changed, FAKE, previous=old)
    full = RetrievalIndex.build(changed, FAKE)
    for method in ("bm25", "dense", "hybrid"):
        assert results(incremental, method) == results(full, method)
    assert (incremental.unit_vectors == full.unit_vectors).all()
    # Only the changed ferry text (its new sentence merges into the last unit) and the new
    # museum chunk were embedded: 2 chunk texts + their new units.
    assert incremental.stats.embedded <= 5 < full.stats.embedded
    assert incremental.stats.reused == incremental.stats.units + incremental.stats.chunks - incremental.stats.embedded


def test_load_refuses_other_build_settings_or_embedder(chunks, tmp_path):
    RetrievalIndex.build(chunks, FAKE).save(tmp_path / "ix")
    with pytest.raises(IndexMismatchError, match="unit_min_words"):
        RetrievalIndex.load(tmp_path / "ix", settings=Settings(embedder="fake:test", unit_min_words=3))
    with pytest.raises(IndexMismatchError, match="holds vectors of fake:test"):
        RetrievalIndex.load(tmp_path / "ix", embedder=get_embedder("fake:other"))
    with pytest.raises(IndexMismatchError, match="manifest"):
        RetrievalIndex.load(tmp_path / "nothing")
    # Search-time settings may change on load.
    again = RetrievalIndex.load(tmp_path / "ix", settings=Settings(embedder="fake:test", rrf_k=1))
    assert again.settings.rrf_k == 1


def test_unknown_embedder_prefix_lists_the_known_ones():
    with pytest.raises(UnknownEmbedderError, match=r"known prefixes: fake:, st:"):
        get_embedder("openai:text-embedding-3-small")


def test_unknown_method_and_settings():
    with pytest.raises(RetrievalError, match="unknown fusion"):
        Settings(fusion="max")
    with pytest.raises(RetrievalError, match="unknown rankers"):
        Settings(weights={"splade": 1.0})


def test_window_check_warns_with_counts(fake_embedder):
    long = " ".join(["word"] * 100)  # the fake embedder's window is 64 tokens
    index = RetrievalIndex.build([chunk("a", 0, long), chunk("b", 0, "short text here")], FAKE)
    assert index.stats.over_window == 1
    assert "1 of 2 chunks exceed" in index.stats.warnings[0]
    # the text's measured tokens per word, so the user can re-chunk to fit the window
    # (the fake tokenizer counts words + 2: (102 + 5) tokens / 103 words)
    assert "1.04 tokens per word" in index.stats.warnings[0]
    assert index.stats.tokens_per_word == pytest.approx(107 / 103, abs=1e-3)


def test_empty_corpus_and_empty_query(chunks):
    empty = RetrievalIndex.build([], FAKE)
    assert empty.search("anything", 5) == []
    assert RetrievalIndex.build(chunks, FAKE).search("   ", 5) == []
    assert RetrievalIndex.build(chunks, FAKE).search("the of and", 5, "bm25") == []


def test_sentence_units_merge_fragments_and_cut_long_ones():
    text = "A short one. [10] . " + " ".join(["word"] * 25) + ". Tail."
    spans = [text[a:b] for a, b in sentence_spans(text, min_words=4, max_words=10)]
    assert spans[0] == "A short one. [10] ."
    assert all(len(s.split()) <= 10 for s in spans)
    assert " ".join(spans).split() == text.split()


def test_retrieval_never_imports_loop_or_ui():
    code = ("import sys, retrieval, retrieval.prompt, retrieval.index; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('loop', 'generators', 'tui', 'textual')]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_windows_of_one_document_do_not_overlap():
    from retrieval.units import Windows

    doc = " ".join(f"w{i}" for i in range(100))
    win = Windows({"d": doc})
    start = doc.index("w50")
    a, b = win.around("d", start, start + 3, 20)
    assert doc[a:b].split()[0] == "w41" and len(doc[a:b].split()) == 20  # centred
    taken = [(doc.index("w30"), doc.index("w48") + 3)]  # w30..w48 already returned
    a, b = win.around("d", start, start + 3, 20, taken)
    words = doc[a:b].split()
    assert words[0] == "w49" and len(words) == 20  # shifted right, same size, no overlap
    a, b = win.around("d", start, start + 3, 20, [*taken, (doc.index("w53"), len(doc))])
    assert doc[a:b].split() == ["w49", "w50", "w51", "w52"]  # boxed in: only the free words


def test_distinct_windows_return_more_distinct_text():
    sents = [f"Sentence {i} mentions the walrus colony." if i % 4 == 0 else
             f"Plain filler line number {i} here." for i in range(80)]
    text = " ".join(sents)
    big = [chunk("zoo", 0, text)]
    words = {}
    for distinct in (False, True):
        index = RetrievalIndex.build(big, Settings(embedder="fake:t", window_words=40, unit_min_words=1,
                                                   distinct_windows=distinct))
        hits = index.search("walrus colony", 4, "bm25")
        spans = sorted((h.start, h.end) for h in hits)
        words[distinct] = len(set().union(*(set(range(a, b)) for a, b in spans)))
    # the matched sentences lie ~24 words apart: centred 40-word windows overlap by ~16;
    # spans are in characters (about 6 per word)
    assert words[True] > words[False] + 150


def test_local_bm25_prefers_the_word_rare_within_its_document():
    # "walrus" is in every sentence of the zoo document (its topic), "feeding" in one: within
    # that document the feeding sentence wins, though globally "walrus" is the rarer word.
    zoo = ("The walrus enclosure opened in May. The walrus pool is cold. Walrus keepers "
           "train daily. The walrus feeding time is noon. Walrus calves stay inside.")
    other = ("Feeding the ducks is allowed at the pond. Feeding bread is discouraged. "
             "Seed feeding is better. Feeding stations are by the gate.")
    index = RetrievalIndex.build([chunk("zoo", 0, zoo), chunk("pond", 0, other)],
                                 Settings(embedder="fake:t", unit_min_words=1, window_words=6))
    lists = index._rank("bm25_local", "walrus feeding time", None)
    best = index.units[int(lists.ids[0])]
    assert "walrus feeding time" in index.windows.docs["zoo"][best.start : best.end]
    plain = index._rank("bm25", "walrus feeding", None)
    assert len(plain.ids) and len(lists.ids)
    assert index.search("walrus feeding time", 1, "bm25_local")[0].doc_id == "zoo"


def test_scored_window_slides_to_hold_the_next_match_too():
    from retrieval.units import Windows

    text = " ".join(f"w{i}" for i in range(100))
    w = Windows({"d": text})
    def span(a, b):  # character span of words a..b
        return text.index(f"w{a} "), text.index(f"w{b} ") + len(f"w{b}")

    unit, other = span(50, 52), span(62, 64)
    centred = w.around("d", *unit, 20)
    scored = w.around("d", *unit, 20, weights=[(*unit, 1.0), (*other, 0.5)])
    assert not (centred[0] <= other[0] and other[1] <= centred[1])  # centred misses it
    assert scored[0] <= unit[0] and scored[1] >= other[1]  # the scored window holds both
    assert len(text[slice(*scored)].split()) == 20  # same budget
    assert w.around("d", *unit, 20, weights=[(*unit, 1.0)]) == centred  # nothing to gain


def test_coverage_rerank_prefers_the_window_holding_the_whole_question():
    from retrieval.index import Hit

    zoo = ("The walrus enclosure opened in May. The walrus pool is cold. The walrus feeding "
           "time is noon. Keepers train daily.")
    index = RetrievalIndex.build([chunk("zoo", 0, zoo)],
                                 Settings(embedder="fake:t", unit_min_words=1, window_words=6))

    def hit(score, text):
        a = zoo.index(text)
        return Hit("c", score, text, "zoo.md", "zoo", "zoo", a, a + len(text))

    hits = [hit(2.0, "The walrus pool is cold."), hit(1.9, "The walrus feeding time is noon."),
            hit(0.0, "Keepers train daily.")]
    reranked = index._rerank("walrus feeding time", hits, 0.5)
    assert [h.text for h in reranked][:2] == [hits[1].text, hits[0].text]
    assert index._rerank("walrus feeding time", hits, 0.0) == hits
    assert index._rerank("zebra", hits, 0.5) == hits  # no indexed query word: order kept


def test_cross_encoder_reranker_reorders_the_pool_by_its_scores(chunks, tiny_cross_encoder):
    from dataclasses import replace

    import numpy as np

    from retrieval import get_reranker

    uri = f"ce:{tiny_cross_encoder}"
    query = "how much does the ferry ticket cost"
    plain = RetrievalIndex.build(chunks, FAKE)
    reranked = RetrievalIndex.build(chunks, replace(FAKE, reranker=uri))
    pool = plain.search(query, FAKE.rerank_pool, "bm25")  # what the reranker reads
    scores = get_reranker(uri).score(query, [h.text for h in pool])
    order = np.argsort(-scores, kind="stable")[:3]
    hits = reranked.search(query, 3, "bm25")
    assert [h.text for h in hits] == [pool[i].text for i in order]
    assert [h.score for h in hits] == pytest.approx([float(scores[i]) for i in order])
    with pytest.raises(RetrievalError, match=r"unknown reranker 'xx:y' \(known prefixes: ce:\)"):
        Settings(reranker="xx:y")
    missing = RetrievalIndex.build(chunks, replace(FAKE, reranker="ce:/nowhere/model"))
    with pytest.raises(RetrievalError, match="cannot load reranker ce:/nowhere/model"):
        missing.search(query, 3)
