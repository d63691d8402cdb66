"""Scores you can trust: the dev/test split by document, Holm's correction, one
``question_of`` for every consumer."""

from __future__ import annotations

import pytest

from loop.errors import InputError
from loop.eval.stats import holm, paired_diff_ci, paired_p
from loop.split import split_by_document
from retrieval.metrics import EvalItem

CHUNKS = [{"chunk_id": f"c{i}", "source": f"docs/d{i // 2}.md", "text": f"fact {i} is {i * 7}"}
          for i in range(12)]  # six documents, two chunks each


def test_split_keeps_every_document_on_one_side():
    items = [EvalItem(f"q{i}?", [str(i * 7)], [f"c{i}"], str(i)) for i in range(12)]
    items.append(EvalItem("named?", ["x"], [], "n", "d5.md"))  # placed by its doc
    s = split_by_document(items, CHUNKS, seed=3)
    assert len(s.dev) + len(s.test) == 13 and abs(len(s.dev) - len(s.test)) <= 2
    assert not s.dev_sources & s.test_sources
    side = {it.id: ("dev" if it in s.dev else "test") for it in items}
    assert side["10"] == side["11"] == side["n"]  # d5.md's questions stay together
    again = split_by_document(items, CHUNKS, seed=3)
    assert [it.id for it in again.test] == [it.id for it in s.test]  # seeded
    assert s.summary()["by"] == "document"


def test_a_gold_set_from_one_document_cannot_be_split():
    items = [EvalItem(f"q{i}?", ["a"], ["c0"], str(i)) for i in range(5)]
    with pytest.raises(InputError, match="two or more documents"):
        split_by_document(items, CHUNKS)


def test_holm_controls_the_family_and_the_bootstrap_p_matches_the_interval():
    adjusted, rejected = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02]) and rejected == [True, False, False, True]
    a = [1.0] * 30 + [0.0] * 10
    b = [0.0] * 30 + [1.0] * 10
    assert paired_p(a, b) < 0.05 and paired_diff_ci(a, b).excludes_zero()
    c = [1.0, 0.0] * 20
    assert paired_p(c, c[::-1]) > 0.05 and paired_p(c, c) == 1.0


def test_ten_comparisons_that_each_pass_alone_can_fail_together():
    """Five setups, ten pairs: p-values near 0.03 each pass at 95 % alone, not after Holm."""
    _, rejected = holm([0.03] * 10)
    assert not any(rejected)


def test_question_of_reads_a_raft_rows_question_not_its_context():
    from loop.samples import question_of

    ctx = "Context documents:\n[1] The ferry leaves Pier 3 at 7:15.\n[2] Fees are 12 crowns."
    raft = {"task": "raft", "messages": [
        {"role": "user", "content": f"{ctx}\n\nQuestion: At what time does the ferry depart?"},
        {"role": "assistant", "content": "7:15"}]}
    qa = {"task": "qa", "messages": [{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": "Who runs the harbour?"},
                                     {"role": "assistant", "content": "Ilse."}]}
    assert question_of(raft) == "At what time does the ferry depart?"
    assert question_of(qa) == "Who runs the harbour?"


def test_a_raft_row_paraphrasing_an_eval_question_is_counted_as_contamination(tmp_path):
    """The contamination count (and eval-mode decontamination) compare the raft row's
    question, so a near-duplicate hidden behind a context block is found."""
    from generators.filters import Candidate, FilterSettings, decontaminate
    from loop.samples import question_of

    ctx = "\n".join(f"[{i}] Chunk {i} says a great many things about harbours." for i in range(8))
    row = {"task": "raft", "messages": [
        {"role": "user", "content": f"{ctx}\n\nQuestion: When does the ferry to Kell Island leave?"},
        {"role": "assistant", "content": "At 7:15."}]}
    evalq = ["When does the ferry for Kell Island leave?"]
    whole = [Candidate(row["messages"][0]["content"], "", "", "qa")]
    asked = [Candidate(question_of(row), "", "", "qa")]
    assert decontaminate(whole, evalq, FilterSettings(), None) == 0  # the old comparison
    assert decontaminate(asked, evalq, FilterSettings(), None) == 1


def test_the_eval_stage_counts_it(tmp_path):
    from loop.eval.stage import EvalConfig, Question, _Eval
    from loop.handoff import Inputs
    from loop.samples import make_sample, samples_dataset
    from loop.workspace import Workspace, save_dataset

    ctx = "\n".join(f"[{i}] Chunk {i} says a great many things about harbours." for i in range(8))
    row = make_sample("raft", [
        {"role": "user", "content": f"{ctx}\n\nQuestion: When does the ferry to Kell Island leave?"},
        {"role": "assistant", "content": "At 7:15."}], ["c1"])
    with Workspace(tmp_path / "ws") as ws:
        with ws.writing("test"), ws.atomic_dir(ws.artefact("datasets", "d1")) as tmp:
            save_dataset(samples_dataset([row]), tmp / "data")
        stage = _Eval(ws, EvalConfig(), lambda e: None, Inputs(dataset_id="d1"))
        q = Question("1", "When does the ferry for Kell Island leave?", ["7:15"], [], "")
        assert stage._contamination([q]) == 1
