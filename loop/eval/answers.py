"""What the eval asks and how a reply becomes an answer: the question record, the chat
every setup answers (one short-answer system message for all, the retrieved context first
for RAG setups), and the cleaning of a reply into the answer that is scored."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from loop.eval import metrics as M
from loop.eval.setups import SETUPS
from textcore import prompt_with_context


@dataclass
class Question:
    id: str
    question: str
    answers: list[str]
    gold_chunks: list[str]
    doc: str
    task: str = "qa"  # qa | classify (answers[0] is the label) | extract (fields)
    labels: list[str] = dataclasses.field(default_factory=list)
    fields: dict[str, Any] | None = None
    format: dict[str, Any] | None = None  # a generators.formats spec the answer must follow

    @property
    def whole_answer(self) -> bool:
        """Scored on the whole reply, not its first line (a format, a JSON object)."""
        return bool(self.format) or self.task == "extract"


def final_answer(text: str) -> str:
    """The whole final answer of a reply (after the last ``Answer:``), every line kept: what
    a format or an extraction is checked on."""
    if "Answer:" in text:
        text = text.rsplit("Answer:", 1)[1]
    return text.strip()


def clean_answer(text: str) -> str:
    """The final answer of a reply: after the last ``Answer:`` (cot/raft style), first line."""
    if "Answer:" in text:
        text = text.rsplit("Answer:", 1)[1]
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0] if lines else ""


def setup_messages(q: Question, context: tuple[str, list] | None, setup: str) -> list[dict[str, str]]:
    """The chat a setup answers: the short-answer system message every setup (and every
    training row) gets, then the question, after the retrieved context for RAG setups."""
    from generators.tasks.base import student_chat

    if SETUPS[setup].retrieval and context is not None:
        return student_chat([{"role": "user",
                              "content": prompt_with_context(context[0], q.question)}])
    return student_chat([{"role": "user", "content": q.question}])


def gold_chunks(answers: list[str], doc: str, chunks: list[dict]) -> list[str]:
    """Gold evidence when the set names none: chunks (of ``doc`` when given) that contain a
    gold answer (its first ~80 normalised characters)."""
    keys = [M.normalize_answer(a)[:80] for a in answers if M.normalize_answer(a)]
    out = []
    for c in chunks:
        if doc and not (c["source"] == doc or c["source"].endswith("/" + doc)):
            continue
        text = M.normalize_answer(c["text"])
        if any(k in text for k in keys):
            out.append(c["chunk_id"])
    return out
