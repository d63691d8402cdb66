"""Source weights: preferred sources win ties in fusion, at search time, and nothing
changes without them."""

from dataclasses import replace

import numpy as np
import pytest

from retrieval import RetrievalError, RetrievalIndex, Settings
from retrieval.fusion import Ranked, check_source_weights, fuse, source_weight

from .conftest import TOPICS, chunk

FAKE = Settings(embedder="fake:test", window_words=40)
SAME = TOPICS["ferry"]  # one text under two paths: both answer equally well
QUESTION = "how much does a ferry ticket cost"


@pytest.fixture
def twins(chunks):
    return [*chunks, chunk("a-ferry", 0, SAME, source="docs/a/ferry.md", title="Ferry (A)"),
            chunk("b-ferry", 0, SAME, source="docs/b/ferry.md", title="Ferry (B)")]


def first_source(index, method="hybrid"):
    return index.search(QUESTION, 3, method)[0].source


@pytest.mark.parametrize("method", ["bm25", "dense", "hybrid"])
@pytest.mark.parametrize("fusion", ["zscore", "rrf"])
def test_a_preferred_twin_ranks_first_and_flipping_flips_it(twins, method, fusion):
    index = RetrievalIndex.build(twins, replace(FAKE, fusion=fusion))
    top = {h.source for h in index.search(QUESTION, 3, method)[:3]}
    assert {"docs/a/ferry.md", "docs/b/ferry.md"} <= top  # a three-way tie without weights
    for preferred in ("a", "b"):
        index.settings = replace(index.settings, source_weights={f"{preferred}/*": 3.0})
        hit = index.search(QUESTION, 3, method)[0]
        assert hit.source == f"docs/{preferred}/ferry.md" and hit.weight == 3.0


def test_without_weights_search_is_unchanged(twins):
    index = RetrievalIndex.build(twins, FAKE)
    queries = [QUESTION, "borrow books", "glass recycling box", "lighthouse"]

    def results():
        return [[(h.chunk_id, h.score, h.text, h.weight) for h in index.search(q, 5, m)]
                for q in queries for m in ("bm25", "dense", "hybrid")]

    before = results()
    assert all(w == 1.0 for rows in before for *_, w in rows)
    index.settings = replace(FAKE, source_weights={})
    assert results() == before
    index.settings = replace(FAKE, source_weights={"nowhere/*": 5.0})  # matches no chunk
    assert results() == before


def test_weights_are_search_time_a_saved_index_takes_them_without_a_rebuild(twins, tmp_path):
    RetrievalIndex.build(twins, FAKE).save(tmp_path / "ix")
    plain = RetrievalIndex.load(tmp_path / "ix")
    preferred = RetrievalIndex.load(tmp_path / "ix",
                                    settings=replace(FAKE, source_weights={"Ferry (B)": 2}))
    assert preferred.search(QUESTION, 1)[0].source == "docs/b/ferry.md"  # matched on the title
    assert plain.search(QUESTION, 1)[0].source != "docs/b/ferry.md"
    assert FAKE.build_key() == replace(FAKE, source_weights={"b/*": 2}).build_key()


def test_a_cross_encoder_keeps_the_boosted_order_among_its_ties(twins, tiny_cross_encoder):
    settings = replace(FAKE, reranker=f"ce:{tiny_cross_encoder}")
    index = RetrievalIndex.build(twins, settings)
    for preferred in ("a", "b"):
        index.settings = replace(settings, source_weights={f"{preferred}/*": 3.0})
        hits = [h for h in index.search(QUESTION, 5) if h.text == SAME]
        assert hits[0].source == f"docs/{preferred}/ferry.md"


def test_fusion_multiplies_evidence():
    lists = {"x": Ranked.of(np.array([0, 1, 2]), np.array([3.0, 2.0, 1.0]))}
    ids, scores = fuse(lists, {"x": 1.0}, fusion="rrf", rrf_k=1.0)
    boost = np.array([1.0, 1.0, 4.0])
    bids, bscores = fuse(lists, {"x": 1.0}, fusion="rrf", rrf_k=1.0, boost=boost)
    assert bids.tolist() == [2, 0, 1]  # 4 x 1/4 beats 1/2
    assert dict(zip(bids.tolist(), bscores.tolist(), strict=True)) == pytest.approx(
        {i: s * boost[i] for i, s in zip(ids.tolist(), scores.tolist(), strict=True)})
    # zscore sums can be negative: the weight multiplies what lies above the floor (the
    # score a candidate no ranker returned gets), so a weight > 1 never demotes
    zids, _ = fuse(lists, {"x": 1.0}, fusion="zscore", boost=np.array([1.0, 3.0, 1.0]))
    assert zids.tolist() == [1, 0, 2]


def test_source_weight_globs():
    w = {"notices/*": 3.0, "*.rst": 1.5, "*council*": 2.0, "drafts/*": 0.5}
    assert source_weight("marrowick/notices/fees.txt", "Fees", w) == 3.0  # a tail of the path
    assert source_weight("Notices/x.md", "", w) == 3.0  # case-insensitive
    assert source_weight("history/timeline.rst", "", w) == 1.5
    assert source_weight("a/b.md", "Minutes of the Council", w) == 2.0  # the title
    assert source_weight("notices/council.rst", "", w) == 3.0  # several: the largest
    assert source_weight("drafts/plan.md", "", w) == 0.5
    assert source_weight("parks/trails.md", "Trails", w) == 1.0  # none


@pytest.mark.parametrize("bad", [{"a/*": 0}, {"a/*": -1.0}, {"a/*": float("nan")},
                                 {"a/*": float("inf")}, {"": 2.0}, {"a/*": True}])
def test_weights_must_be_positive_numbers(bad):
    with pytest.raises(RetrievalError):
        check_source_weights(bad)
    with pytest.raises(RetrievalError):
        Settings(source_weights=bad)
