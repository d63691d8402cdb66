"""The coverage ceiling: the share of eval answers that training taught as answers.

A closed-book setup can only recall what it was trained on, so this share bounds what
``tuned`` could reach on the set; the report prints it beside the scores. A gold answer is
covered when a training row's answer equals one of its forms (SQuAD-normalised) or holds it
whole with at most :data:`EXTRA_WORDS` more words ("42 beds" covers "42"). Computed from the
dataset alone, after training: it never chooses what is trained.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from textcore import normalize_answer

EXTRA_WORDS = 2  # a unit or a counted noun beside the gold answer


def trained_answers(samples: Any) -> set[str]:
    """The normalised answers of a dataset's training rows (after ``Answer:`` when a row
    reasons first)."""
    out = set()
    for r in samples.select_columns(["messages", "split"]):
        if r["split"] != "train" or not r["messages"]:
            continue
        text = r["messages"][-1]["content"]
        if "Answer:" in text:
            text = text.rsplit("Answer:", 1)[1]
        n = normalize_answer(text)
        if n:
            out.add(n)
    return out


def covered(golds: Sequence[str], answers: set[str]) -> bool:
    for g in map(normalize_answer, golds):
        if not g:
            continue
        if g in answers:
            return True
        n = len(g.split())
        padded = f" {g} "
        if any(len(a.split()) - n <= EXTRA_WORDS and padded in f" {a} " for a in answers):
            return True
    return False


def coverage(gold: Iterable[Sequence[str]], answers: set[str]) -> dict[str, Any]:
    """``{"share", "covered", "questions", "trained_answers"}`` over the QA items' gold answers."""
    gold = list(gold)
    hit = sum(covered(g, answers) for g in gold)
    return {"share": round(hit / len(gold), 4) if gold else None, "covered": hit,
            "questions": len(gold), "trained_answers": len(answers),
            "rule": f"a gold answer equals a trained answer or sits whole in one with at most "
                    f"{EXTRA_WORDS} more words"}
