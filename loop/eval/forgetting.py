"""The forgetting probe in an evaluation: base against every tuned setup on the general
text and questions shipped in ``loop/probes``."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from loop.eval import metrics as M
from loop.eval.answers import clean_answer
from loop.eval.setups import adapter_kinds
from loop.eval.stats import paired_diff_ci


def forgetting_probe(pool: Any, setups: list[str], *, max_new_tokens: int, n_boot: int = 2000,
                     seed: int = 0) -> dict[str, Any]:
    """Perplexity on general text and F1, answer F1 and contains on the general questions,
    for ``base`` and each adapter kind in ``setups`` (answered through ``pool``, a
    :class:`~loop.eval.models.SetupModels`), each tuned one paired against base."""
    from generators.tasks.base import student_chat
    from generators.teachers.hf import generate_texts
    from loop.probes import general_questions, general_text, perplexity

    text, qs = general_text(), general_questions()
    out, per = {}, {}
    # the closed-book setups and the context-trained one (its weights differ from tuned's)
    probed = ["base", *adapter_kinds()]
    for setup in [s for s in probed if s in setups]:
        with pool.use(setup) as (model, tok):
            window = min(512, getattr(model.config, "max_position_embeddings", 512) - 1)
            answers = generate_texts(model, tok, [student_chat([{"role": "user", "content": q["question"]}])
                                                  for q in qs], max_new_tokens=max_new_tokens)
            said = [clean_answer(a.text) for a in answers]
            # answer_f1 beside F1: a tuned model's short answers must not look like
            # remembering just because base's sentences echo the question
            per[setup] = {
                "f1": [M.f1_score(a, q["answers"]) for a, q in zip(said, qs, strict=True)],
                "answer_f1": [M.answer_f1(a, q["answers"], q["question"])
                              for a, q in zip(said, qs, strict=True)],
                "contains": [M.contains_gold(a.text, q["answers"])
                             for a, q in zip(answers, qs, strict=True)]}
            out[setup] = {"perplexity": round(perplexity(model, tok, text, window), 3),
                          "general_f1": round(sum(per[setup]["f1"]) / len(qs), 4),
                          "general_answer_f1": round(sum(per[setup]["answer_f1"]) / len(qs), 4),
                          "general_contains": round(sum(per[setup]["contains"]) / len(qs), 4),
                          "questions": len(qs)}
    kw = {"n_boot": n_boot, "seed": seed}
    for setup in [s for s in out if s != "base" and "base" in out]:
        # paired over the same general questions: is the change more than noise?
        out[setup]["vs_base"] = {m: paired_diff_ci(per[setup][m], per["base"][m], **kw).as_dict()
                                 for m in ("f1", "answer_f1", "contains")}
    return out


def probe_hash() -> str:
    """A hash of the probe's text and questions: part of every evaluation id that ran it."""
    from loop.probes import general_questions, general_text

    blob = json.dumps([general_text(), general_questions()], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
