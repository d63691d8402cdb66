"""The FAISS layer: exact search equals brute force; HNSW and IVF recall against exact."""

import numpy as np
import pytest

from retrieval.dense import DenseIndex, choose_kind
from retrieval.errors import RetrievalError


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n, dim=32, clusters=40, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    return unit(centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, dim)))


def test_flat_equals_brute_force():
    rng = np.random.default_rng(1)
    base, queries = unit(rng.standard_normal((500, 24))), unit(rng.standard_normal((20, 24)))
    scores, rows = DenseIndex.build(base, "flat").search(queries, 10)
    expect = np.argsort(-(queries @ base.T), axis=1, kind="stable")[:, :10]
    assert (rows == expect).all()
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ base.T, expect, 1), rtol=1e-5)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_recall_against_exact(kind):
    base, queries = clustered(6000), clustered(100, seed=7)
    _, exact = DenseIndex.build(base, "flat").search(queries, 10)
    _, approx = DenseIndex.build(base, kind).search(queries, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall >= 0.9, f"{kind} recall@10 {recall:.3f}"


def test_auto_kind_by_size_and_unknown_kind():
    assert choose_kind("auto", 1000) == "flat"
    assert choose_kind("auto", 10**6) == "hnsw"
    with pytest.raises(RetrievalError, match="known: auto, flat, hnsw, ivf"):
        choose_kind("annoy", 10)


def test_save_load_roundtrip(tmp_path):
    base = clustered(300)
    index = DenseIndex.build(base, "hnsw")
    index.save(tmp_path / "x.faiss")
    again = DenseIndex.load(tmp_path / "x.faiss", "hnsw")
    a, b = index.search(base[:5], 5), again.search(base[:5], 5)
    assert (a[1] == b[1]).all()
