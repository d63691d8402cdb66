"""Metrics on hand-computed examples, and the gold-set readers."""

import json
import math

import pytest

from retrieval import EvalItem, RetrievalError, evaluate, gold_counter, load_eval_set
from retrieval.evalset import whole_words
from retrieval.index import Hit
from retrieval.metrics import is_relevant, mrr_at_k, ndcg_at_k, recall_at_k
from textcore import normalize_answer


def test_recall_mrr_ndcg_by_hand():
    rel = [False, True, False, True]
    assert recall_at_k(rel, 1) == 0.0 and recall_at_k(rel, 2) == 1.0
    assert mrr_at_k(rel) == 0.5
    assert mrr_at_k([False] * 12 + [True]) == 0.0  # beyond @10
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3)
    assert ndcg_at_k(rel, n_relevant=2) == pytest.approx(dcg / idcg)
    assert ndcg_at_k([True], n_relevant=0) == 1.0
    assert ndcg_at_k([True, True], n_relevant=1) == 1.0  # never above 1


def test_normalize_and_whole_word_containment():
    assert normalize_answer("The  Ferry, (an) old-one!") == "ferry oldone"
    item = EvalItem("q", ["42"])
    assert is_relevant(item, "x", "It has 42 beds.")
    assert not is_relevant(item, "x", "It has 142 beds.")
    long = EvalItem("q", ["word " * 40])  # only the first ~80 characters must be present
    assert is_relevant(long, "x", "here " + "word " * 17 + " and then the text ends")


def test_doc_restricts_containment_and_chunk_ids_win():
    item = EvalItem("q", ["42"], doc="about/glance.md")
    assert is_relevant(item, "x", "42 beds", "marrowick/about/glance.md")
    assert not is_relevant(item, "x", "42 beds", "marrowick/other.md")
    assert is_relevant(EvalItem("q", [], ["c7"]), "c7", "no answer here")


def hit(cid, text, source="d.md"):
    return Hit(cid, 1.0, text, source, "t", "d", 0, len(text))


def test_evaluate_by_hand():
    items = [EvalItem("q1", ["alpha"]), EvalItem("q2", ["beta"])]
    ranked = {"q1": [hit("1", "alpha here"), hit("2", "x y")],
              "q2": [hit("3", "nothing"), hit("4", "so beta")]}
    chunks = [{"chunk_id": "1", "text": "alpha here", "source": "d.md"},
              {"chunk_id": "4", "text": "so beta", "source": "d.md"}]
    s = evaluate(lambda q, k: ranked[q][:k], items, [1, 2], gold_counter(chunks), budget_k=2)
    assert s.figures["recall@1"] == 0.5 and s.figures["recall@2"] == 1.0
    assert s.figures["mrr@10"] == 0.75
    assert s.figures["ndcg@10"] == pytest.approx(round((1 + 1 / math.log2(3)) / 2, 4))
    assert s.words_per_question == 3.5  # (2 + 2 + 1 + 2) words / 2 questions


def test_load_jsonl_and_squad(tmp_path):
    jl = tmp_path / "gold.jsonl"
    jl.write_text(json.dumps({"question": "Q?", "answers": ["a", "b"], "doc": "x.md"}) + "\n\n")
    assert load_eval_set(jl) == [EvalItem("Q?", ["a", "b"], [], "1", "x.md")]
    sq = tmp_path / "squad.json"
    sq.write_text(json.dumps({"data": [{"paragraphs": [{"context": "c", "qas": [
        {"id": 7, "question": "Q?", "answers": [{"text": "c", "answer_start": 0}]},
        {"id": 8, "question": "none?", "answers": []}]}]}]}))
    assert load_eval_set(sq) == [EvalItem("Q?", ["c"], [], "7", "squad.json#0.0")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"answers": ["x"]}\n')
    with pytest.raises(RetrievalError, match="bad.jsonl:1"):
        load_eval_set(bad)
    with pytest.raises(RetrievalError, match="cannot read"):
        load_eval_set(tmp_path / "missing.jsonl")


def test_one_parser_gives_the_items_and_every_question(tmp_path):
    """Generation keeps away from every gold question, answered or not; scoring takes the
    answerable ones: one parser, two views of the same lines."""
    from retrieval.evalset import parse_eval_set, parse_questions

    jl = tmp_path / "gold.jsonl"
    raw = "\n".join([json.dumps({"question": "Q?", "answers": ["a"]}), "{oops",
                     json.dumps({"question": "open?", "task": "classify"}),
                     json.dumps({"answers": ["x"]})])
    assert [it.question for it in parse_eval_set(raw, jl)] == ["Q?"]
    qs = parse_questions(raw, jl)
    assert list(qs) == [("Q?", "qa"), ("open?", "classify")]
    assert [s.split(":")[1] for s in qs.skipped] == ["2", "4"]
    assert "not valid JSON" in qs.skipped[0]
    sq = tmp_path / "squad.json"
    raw = json.dumps({"data": [{"paragraphs": [{"context": "c", "qas": [
        {"id": 7, "question": "Q?", "answers": [{"text": "c", "answer_start": 0}]},
        {"id": 8, "question": "none?", "answers": []}]}, {"context": "d"}]}]})
    assert [it.question for it in parse_eval_set(raw, sq)] == ["Q?"]
    assert list(parse_questions(raw, sq)) == [("Q?", "qa"), ("none?", "qa")]
    with pytest.raises(RetrievalError, match="not SQuAD JSON"):
        parse_questions(json.dumps({"data": [{"paragraphs": [{"qas": [{"query": "?"}]}]}]}), sq)


def test_squad_answers_cut_inside_a_word_are_widened_to_whole_words():
    ctx = "Staff wear gowns in the clean area and masks outside."
    assert whole_words(ctx, 21, "he clean are") == "the clean area"
    assert whole_words(ctx, 3, "he clean are") == "the clean area"  # offset off: found anyway
    assert whole_words(ctx, 11, "gowns") == "gowns"  # already whole: unchanged
    assert whole_words(ctx, 0, "not in it") == "not in it"
    assert whole_words(ctx, None, "") == ""


def test_squad_items_name_the_source_the_ingester_gives_their_paragraph(tmp_path):
    from loop.ingest.readers import read_squad_json

    sq = tmp_path / "set.json"
    sq.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [
        {"context": "first paper", "qas": []},
        {"context": "The clean area is small.", "qas": [
            {"id": "q", "question": "Which area?", "answers": [{"text": "clean are",
                                                                   "answer_start": 4}]}]}]}]}))
    (item,) = load_eval_set(sq)
    docs = list(read_squad_json(sq, sq.name))
    assert item.doc == docs[1].source == "set.json#0.1"
    assert item.answers == ["clean area"]
    assert is_relevant(item, "c1", "the clean area is small", docs[1].source)
    assert not is_relevant(item, "c0", "the clean area is small", docs[0].source)
