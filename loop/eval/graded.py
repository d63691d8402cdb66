"""Metrics that need a model: semantic similarity (the embedder) and an LLM judge's grade.

Each is a ``per_batch`` metric of the registry in :mod:`loop.eval.metrics`: it gets the eval
stage (its config, workspace and notes), the questions and every prediction, and fills its
own column; a failure is a note, never a lost evaluation.
"""

from __future__ import annotations

import os
from typing import Any

from loop.eval.metrics import Metric, register_metric

JUDGE_PROMPT = """Grade a candidate answer against the reference answer(s) to a question.
5 = says the same as a reference (wording may differ); 3 = partly right; 1 = wrong, empty or
unrelated. Judge correctness only, not style.

Question: {question}
Reference answer(s): {references}
Candidate answer: {candidate}

Reply with JSON only: {{"score": 1-5, "reason": "..."}}"""


def semantic(stage: Any, questions: list, preds: list[dict]) -> None:
    """Cosine similarity of the answer and the first gold answer (the default embedder)."""
    try:
        from retrieval.embedders import get_embedder

        emb = get_embedder()
        golds = {q.id: q.answers[0] if q.answers else "" for q in questions}
        a = emb.embed([p["answer"] or " " for p in preds])
        g = emb.embed([golds[p["eval_id"]] or " " for p in preds])
        for p, s in zip(preds, (a * g).sum(axis=1), strict=True):
            p["semantic"] = float(s)
    except Exception as e:  # noqa: BLE001 - the other metrics stand without this one
        stage.notes.append(f"semantic similarity skipped: {e}")
        for p in preds:
            p["semantic"] = None


def judge(stage: Any, questions: list, preds: list[dict]) -> None:
    """Reference-guided correctness, 1-5 from the judge, kept as (score - 1) / 4."""
    for p in preds:
        p["judge"] = None
    cfg = stage.cfg
    if not cfg.judge:
        return
    import loop.train.students  # noqa: F401 - registers the hf: and smollm2 teachers
    from generators.filters import JudgeOut
    from generators.parsing import ParseFailure, parse_json
    from generators.teachers import get_teacher
    from loop.ledger import TeacherCallCache

    teacher = get_teacher(cfg.judge, cache=TeacherCallCache(stage.ws.ledger), base_url=cfg.judge_url,
                          ws=stage.ws, device=cfg.device, dtype=cfg.dtype,
                          api_key=os.environ.get("OPENAI_API_KEY"),
                          params={"temperature": 0.0, "max_tokens": 200, "seed": 0})
    by_id = {q.id: q for q in questions}
    todo = [p for p in preds if p["answer"]]
    msgs = [[{"role": "user", "content": JUDGE_PROMPT.format(
        question=by_id[p["eval_id"]].question, references=" | ".join(by_id[p["eval_id"]].answers),
        candidate=p["answer"])}] for p in todo]
    failed, unreadable = [], 0
    for p, reply in zip(todo, teacher.complete_all(msgs), strict=True):
        if isinstance(reply, Exception):
            failed.append(f"{type(reply).__name__}: {reply}")  # HTTP bodies come redacted
            continue
        try:
            p["judge"] = (parse_json(reply.text, JudgeOut).score - 1) / 4
        except ParseFailure:
            unreadable += 1  # an unusable grade is missing, not zero
    teacher.close()
    if failed or unreadable:
        stage.notes.append(
            f"judge: {len(todo) - len(failed) - unreadable} of {len(todo)} answers graded; the "
            "judge column averages those only"
            + (f"; {len(failed)} request(s) failed (the first: {failed[0][:200]})" if failed else "")
            + (f"; {unreadable} reply(ies) held no grade" if unreadable else ""))
    for p in preds:
        if not p["answer"]:
            p["judge"] = 0.0  # an empty answer is wrong whatever a judge would say


register_metric(Metric("semantic", "semantic similarity to the gold answer", 3, per_batch=semantic,
                       plotted=True))
register_metric(Metric("judge", "LLM judge grade", 4, per_batch=judge))
