"""An evaluation records the index's source weights (in its lineage and its id, only when
there are some) and the report says which sources retrieval preferred."""

from types import SimpleNamespace

from loop.eval.report import _markdown
from loop.eval.stage import _searched_as, _source_weights


def retriever(weights):
    return SimpleNamespace(index_id="ix1", cfg=SimpleNamespace(k=5, source_weights=weights))


def test_weights_enter_the_eval_id_only_when_given():
    assert _searched_as(retriever({})) == "ix1"  # an evaluation without them keeps its id
    assert _searched_as(None) == ""
    assert _searched_as(retriever({"b/*": 3.0})) != _searched_as(retriever({"b/*": 2.0})) != "ix1"
    assert _source_weights(retriever({"b/*": 3.0})) == {"b/*": 3.0}


def test_the_report_names_the_preferred_sources():
    scores = {"verdict": "v", "questions": 1, "origin": "gold", "contamination": 0,
              "setups": {}, "differences": [], "models": {"rag": None}}
    assert "preferred sources" not in _markdown({**scores, "lineage": {"index": "ix1"}}, [])
    text = _markdown({**scores, "lineage": {"index": "ix1",
                                            "source_weights": {"notices/*": 3.0}}}, [])
    assert "Retrieval preferred sources" in text and "`notices/*` x3" in text
