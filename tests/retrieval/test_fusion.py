"""Fusion on hand-made lists, with the scores worked out by hand."""

import numpy as np
import pytest

from retrieval.fusion import Ranked, fuse


def test_rrf_hand_made():
    lists = {"bm25": Ranked.of([1, 2, 3], [9, 5, 1]), "dense": Ranked.of([3, 1, 4], [0.9, 0.8, 0.1])}
    ids, scores = fuse(lists, {"bm25": 1.0, "dense": 1.0}, fusion="rrf", rrf_k=1)
    # 1: 1/2 + 1/3 ; 3: 1/4 + 1/2 ; 2: 1/3 ; 4: 1/4
    assert ids.tolist() == [1, 3, 2, 4]
    np.testing.assert_allclose(scores, [5 / 6, 3 / 4, 1 / 3, 1 / 4], rtol=1e-6)


def test_weights_change_the_winner():
    lists = {"bm25": Ranked.of([1, 2], [2, 1]), "dense": Ranked.of([2, 1], [2, 1])}
    assert fuse(lists, {"bm25": 2.0, "dense": 1.0})[0][0] == 1
    assert fuse(lists, {"bm25": 1.0, "dense": 2.0})[0][0] == 2
    assert fuse(lists, {"bm25": 1.0, "dense": 0.0})[0].tolist() == [1, 2]


def test_zscore_missing_candidate_gets_the_floor():
    lists = {"a": Ranked.of([1, 2, 3], [3.0, 2.0, 1.0]), "b": Ranked.of([3], [5.0])}
    ids, scores = fuse(lists, {"a": 1.0, "b": 1.0}, fusion="zscore")
    # a: z = [1.2247, 0, -1.2247]; b has one candidate: it gets 1, the others b's floor 0
    assert ids.tolist() == [1, 2, 3]
    np.testing.assert_allclose(scores, [1.2247449, 0.0, 1 - 1.2247449], atol=1e-5)


def test_ties_break_by_id():
    ids, _ = fuse({"a": Ranked(np.array([5, 4]), np.array([1.0, 1.0]), np.array([0, 0]))}, {"a": 1})
    assert ids.tolist() == [4, 5]


def test_unknown_fusion_is_an_assertion():
    with pytest.raises(AssertionError):
        fuse({}, {}, fusion="max")
