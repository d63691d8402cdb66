import numpy as np
import pytest
from pydantic import BaseModel

from generators.filters import (
    Candidate,
    FilterSettings,
    decontaminate,
    drop_duplicates,
    grounding_score,
)
from generators.parsing import ParseFailure, parse_json


class Out(BaseModel):
    answer: str
    score: int


@pytest.mark.parametrize("text", [
    '{"answer": "x", "score": 3}',
    'Sure! ```json\n{"answer": "x", "score": 3}\n``` hope it helps',
    'Here you go: {"answer": "x", "score": 3} done',
])
def test_parse_json_accepts_fenced_and_wrapped_objects(text):
    assert parse_json(text, Out) == Out(answer="x", score=3)


@pytest.mark.parametrize(("text", "words"), [
    ("no json here", "no JSON object"),
    ('{"answer": "x", "score": ', "invalid JSON"),
    ('{"answer": "x"}', "score"),
    ('{"answer": "x", "score": "high"}', "score"),
])
def test_parse_json_says_what_is_wrong(text, words):
    with pytest.raises(ParseFailure, match=words):
        parse_json(text, Out)


def test_grounding():
    src = "The ferry to Port Ennis leaves at 07:00 and costs 4.50 crowns."
    assert grounding_score("07:00", src) == 1.0
    assert grounding_score("It costs 4.50 crowns", src) == 1.0
    assert grounding_score("The ferry is free on Mondays", src) < 0.5


def _cands(qs):
    return [Candidate(q, "a", "src", "qa") for q in qs]


def test_exact_and_near_duplicates_are_marked_not_lost():
    cands = _cands(["When does the ferry leave?", "When does the ferry leave?",
                    "When does the ferry leave, exactly?", "Who is the mayor?"])
    drop_duplicates(cands, FilterSettings(near_dup_threshold=0.7), None)
    assert [c.rejected_by for c in cands] == [None, "dedup", "dedup", None]
    assert cands[1].verdicts["dedup"]["kind"] == "exact"
    assert cands[2].verdicts["dedup"]["kind"] == "near"


def test_injected_embedder_is_used():
    calls = []

    def embed(texts):
        calls.append(len(texts))
        return np.eye(len(texts))

    cands = _cands(["a?", "b?", "c?"])
    drop_duplicates(cands, FilterSettings(), embed)
    assert calls == [3] and all(c.rejected_by is None for c in cands)


def test_decontamination_by_similarity_and_ngrams():
    cands = _cands(["How much does an adult bus ticket cost in Marrowick?",
                    "Which day is bulky waste collected?",
                    "Tell me please how much does an adult bus ticket cost in town"])
    n = decontaminate(cands, ["How much does an adult bus ticket cost in Marrowick"],
                      FilterSettings(decontam_threshold=0.85, decontam_ngram=6), None)
    assert n == 2 and cands[1].rejected_by is None
