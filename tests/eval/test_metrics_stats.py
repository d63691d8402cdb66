"""Metrics against values the official SQuAD v1.1 script gives on hand cases, and the
bootstrap's behaviour on simulated data."""

import numpy as np
import pytest

from loop.eval.metrics import (
    exact_match,
    f1_score,
    faithfulness,
    hit_and_rr,
    normalize_answer,
    rouge_l,
)
from loop.eval.stats import bootstrap_ci, mcnemar_p, paired_diff_ci


@pytest.mark.parametrize(("pred", "golds", "em", "f1"), [
    # Values computed by hand with the official evaluate-v1.1.py definitions.
    ("The Eiffel Tower!", ["eiffel tower"], 1.0, 1.0),
    ("in 1842", ["1842"], 0.0, 2 * (1 / 2 * 1) / (1 / 2 + 1)),
    ("Ilse Brannock", ["Brannock", "Ilse Brannock"], 1.0, 1.0),
    ("a red lever", ["the lever"], 0.0, 2 * (1 / 2) * 1 / (1 / 2 + 1)),
    ("", ["anything"], 0.0, 0.0),
    ("€2.40 per ride", ["€2.40"], 0.0, 2 * (1 / 3) * 1 / (1 / 3 + 1)),
])
def test_squad_em_f1(pred, golds, em, f1):
    assert exact_match(pred, golds) == em
    assert f1_score(pred, golds) == pytest.approx(f1)


def test_normalisation():
    assert normalize_answer("  The  Cat, a hat; AN apple. ") == "cat hat apple"
    assert normalize_answer("theory") == "theory"  # articles only as whole words
    # generators' filters key rows with the articles kept (exact duplicates, n-grams)
    assert normalize_answer("  The  Cat, a hat; AN apple. ", articles=False) == "the cat a hat an apple"


def test_rouge_l_and_retrieval_metrics():
    assert rouge_l("the ferry leaves at seven", ["ferry leaves at 7"]) == pytest.approx(2 * 0.75 * 0.75 / 1.5)
    assert hit_and_rr(["a", "b", "c"], ["c"], k=2) == (0.0, 1 / 3)
    assert hit_and_rr(["a", "b", "c"], ["b", "x"], k=2) == (1.0, 0.5)
    assert hit_and_rr(["a"], ["z"], k=5) == (0.0, 0.0)
    assert faithfulness("costs twelve crowns", "Mooring costs twelve crowns.") == 1.0
    assert faithfulness("costs nine pounds", "Mooring costs twelve crowns.") == pytest.approx(1 / 3)


def test_bootstrap_is_deterministic_and_covers_the_truth():
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(200):
        x = rng.binomial(1, 0.3, size=200)
        ci = bootstrap_ci(x, seed=trial, n_boot=500)
        covered += ci.ci_low <= 0.3 <= ci.ci_high
    assert 0.90 <= covered / 200 <= 0.99  # about 95% coverage
    x = rng.random(50)
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)


def test_paired_difference_and_mcnemar():
    rng = np.random.default_rng(2)
    a = rng.binomial(1, 0.7, size=300).astype(float)
    b = np.where(rng.random(300) < 0.2, 0.0, a)  # b loses ~20% of a's hits
    diff = paired_diff_ci(a, b)
    assert diff.excludes_zero() and diff.mean > 0
    assert mcnemar_p(a, b) < 0.001
    assert mcnemar_p(a, a) == 1.0
    same = paired_diff_ci(a, a)
    assert not same.excludes_zero()
