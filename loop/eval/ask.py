"""One question, every setup: the answers side by side with the chunks they were shown.

The dashboard's playground. Setups are built exactly as the eval stage builds them (the same
student pool, retriever, prompt layout and answer cleaning), so what a person sees here is
what the scoreboard measured.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loop.errors import InputError, WorkspaceError
from loop.eval.answers import Question, clean_answer, setup_messages
from loop.eval.models import models_of
from loop.eval.setups import SETUPS, setup_names
from loop.handoff import Inputs, given
from loop.workspace import Workspace


@dataclass
class SetupAnswer:
    setup: str
    answer: str
    raw: str
    sources: list[Any]  # retrieval Hits (chunk_id, source, text, score)
    latency_ms: float


@dataclass
class Playground:
    """Models and retriever loaded once; ``ask`` answers with every available setup."""

    ws: Workspace
    student: str | None = None
    k: int | None = None
    max_new_tokens: int = 48
    context_tokens: int = 1500
    device: str = "auto"
    notes: list[str] = field(default_factory=list)
    only: list[str] | None = None  # these setups (each must be available), else every one
    trust_remote_code: bool = False  # the student's own opt-ins, as eval takes them
    allow_pickle: bool = False
    # The configured student (a config file's [train] student) for base and rag before any
    # model is trained or scored; None: the train stage's default.
    default_student: str | None = None
    inputs: Inputs | None = None  # the models, index and evaluation (unset: the latest)

    def __post_init__(self) -> None:
        from loop.eval.models import SetupModels
        from loop.index import load_retriever

        self.inputs = given(self.ws, self.inputs)
        self.models = models_of(self.ws, self.inputs.models)
        try:
            self.retriever = load_retriever(self.ws, k=self.k, inputs=self.inputs)
        except WorkspaceError as e:
            self.retriever = None
            self.notes.append(f"no retrieval setups: {e}")
        self.setups = [s for s in setup_names()
                       if (SETUPS[s].adapter is None or SETUPS[s].adapter in self.models)
                       and (not SETUPS[s].retrieval or self.retriever is not None)]
        if self.only:
            missing = [s for s in self.only if s not in self.setups]
            if missing:
                raise InputError(f"setup(s) {', '.join(missing)} cannot answer here (available: "
                                 f"{', '.join(self.setups)})",
                                 hint="train the model it needs, or build the index")
            self.setups = [s for s in self.setups if s in self.only]
        uri = self.student or playground_student(self.ws, self.models, self.default_student,
                                                 eval_id=self.inputs.eval_id)
        self.pool = SetupModels(self.ws, uri, self.models, self.device,
                                trust_remote_code=self.trust_remote_code, allow_pickle=self.allow_pickle)
        self.notes += self.pool.notes

    def ask(self, question: str) -> list[SetupAnswer]:
        from generators.teachers.hf import generate_texts

        question = question.strip()
        if not question:
            raise InputError("type a question first")
        q = Question("playground", question, [], [], "")
        context = self.retriever.context(question, max_tokens=self.context_tokens) if self.retriever else None
        out = []
        for setup in self.setups:
            with self.pool.use(setup) as (model, tok):
                t = time.perf_counter()
                (o,) = generate_texts(model, tok, [setup_messages(q, context, setup)],
                                      max_new_tokens=self.max_new_tokens)
                ms = (time.perf_counter() - t) * 1000
            sources = list(context[1]) if context and SETUPS[setup].retrieval else []
            out.append(SetupAnswer(setup, clean_answer(o.text), o.text, sources, round(ms, 1)))
        return out


def playground_student(ws: Workspace, models: dict[str, Path], default: str | None = None, *,
                       eval_id: str | None = None) -> str:
    """The trained models' student, else the one evaluation ``eval_id`` used (unset: the
    latest), else the configured one: base and rag need no training, so a new workspace
    answers at once."""
    for path in models.values():
        return json.loads((path / "synthloop.json").read_text())["student"]
    eval_id = eval_id or given(ws, None).eval_id
    row = ws.ledger.evaluation(eval_id) if eval_id else None
    student = (row or {}).get("config", {}).get("student") if row else None
    if student:
        return student
    if default:
        return default
    from loop.train.config import TrainConfig

    return TrainConfig().student
