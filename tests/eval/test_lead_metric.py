"""Scores that do not pay for verbosity: answer_f1, contains, the lead metric, the coverage
ceiling, and the one short-answer system message every setup and training row gets."""

from __future__ import annotations

from loop.eval.coverage import coverage, covered
from loop.eval.metrics import answer_f1, contains_gold, f1_score, lead_metric

Q = "How many beds does the community hospital have?"


def test_echoing_the_question_earns_nothing():
    echo = "The community hospital has 12 beds."
    assert f1_score(echo, ["42 beds"]) > 0.25  # F1 pays for "beds", a question word
    assert answer_f1(echo, ["42 beds"], Q) == 0.0
    assert answer_f1("42 beds", ["42 beds", "42"], Q) == 1.0
    # the answer in a sentence: only its new words count ("has" is not in the question)
    assert answer_f1("The community hospital has 42 beds.", ["42 beds"], Q) > 0.6
    # a gold answer made only of question words is scored whole
    assert answer_f1("community hospital", ["community hospital"], "Is it the community hospital?") == 1.0


def test_contains():
    assert contains_gold("It has 42 beds in all", ["42 beds"]) == 1.0
    assert contains_gold("It has 142 beds", ["42 beds"]) == 0.0
    assert contains_gold("Skerrin Gold.", ["Skerrin Gold"]) == 1.0


def test_lead_metric_follows_answer_lengths():
    assert lead_metric({"base": 16.0, "tuned": 1.5}) == "answer_f1"
    assert lead_metric({"base": 3.0, "tuned": 2.5}) == "f1"
    assert lead_metric({"base": 3.0}) == "f1"


def test_coverage_ceiling_allows_a_unit_not_a_sentence():
    trained = {"42 beds", "7915 households", "lorcan pettifer"}
    assert covered(["42"], trained)  # "42 beds" holds it with one more word
    assert covered(["7,915"], trained)
    assert not covered(["1932"], trained)
    assert not covered(["beds"], {"42 beds in the community hospital of marrowick"})
    c = coverage([["42"], ["1932"]], trained)
    assert (c["covered"], c["questions"], c["share"]) == (1, 2, 0.5)


def test_every_setup_and_training_row_gets_the_same_system_message():
    from datasets import Dataset

    from generators.tasks.base import STUDENT_SYSTEM
    from loop.eval.answers import Question, setup_messages
    from loop.train.data import with_student_system
    from textcore import prompt_with_context

    q = Question("1", Q, ["42 beds"], [], "")
    for setup, ctx in (("base", None), ("rag", ("[1] ctx", [])), ("tuned", None),
                       ("combined", ("[1] ctx", []))):
        msgs = setup_messages(q, ctx, setup)
        assert msgs[0] == {"role": "system", "content": STUDENT_SYSTEM}
        # a RAG setup's prompt is laid out as a raft training row is
        assert msgs[-1]["content"] == (prompt_with_context(ctx[0], Q) if setup in ("rag", "combined")
                                       else Q)
    rows = Dataset.from_list([{"messages": [{"role": "user", "content": Q},
                                            {"role": "assistant", "content": "42 beds"}]},
                              {"messages": [{"role": "system", "content": "Mine."},
                                            {"role": "user", "content": Q},
                                            {"role": "assistant", "content": "42 beds"}]}])
    out = with_student_system(rows)["messages"]
    assert out[0][0]["content"] == STUDENT_SYSTEM
    assert out[1][0]["content"] == "Mine."  # a user's own system message is kept


def test_verdict_leads_with_answer_f1():
    from loop.eval.report import verdict

    cell = lambda m: {"mean": m, "ci_low": m - 0.05, "ci_high": m + 0.05}  # noqa: E731
    table = {"base": {"f1": cell(0.30), "answer_f1": cell(0.05)},
             "rag": {"f1": cell(0.40), "answer_f1": cell(0.30)},
             "tuned": {"f1": cell(0.20), "answer_f1": cell(0.35)}}
    diffs = []
    for a, b in (("base", "rag"), ("base", "tuned"), ("rag", "tuned")):
        for m in ("f1", "answer_f1"):
            d = table[a][m]["mean"] - table[b][m]["mean"]
            diffs.append({"a": a, "b": b, "metric": m, "mean": d, "ci_low": d - 0.04,
                          "ci_high": d + 0.04, "significant": abs(d) > 0.04})
    text = verdict(table, diffs, "answer_f1")
    assert "answer-F1" in text and "Recommendation: tuned" in text
    assert "Recommendation: rag" in verdict(table, diffs, "f1")
