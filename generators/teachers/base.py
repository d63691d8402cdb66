"""What every teacher offers: turn generation jobs into parsed items.

Two kinds share one protocol. Chat teachers (``openai:``, ``hf:``) send a task's prompt to a
model and parse the reply against the task's schema, with one repair retry. The ``rules``
teacher writes items directly from the chunk, with no model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    text: str
    title: str = ""
    source: str = ""


@dataclass
class Job:
    """One task on one chunk; ``context`` holds extra chunks (RAFT distractors)."""

    key: str
    task: Any  # generators.tasks.Task (kept loose to avoid an import cycle)
    chunk: Chunk
    n: int = 3
    context: list[Chunk] = field(default_factory=list)
    oracle_in_context: bool = True
    style: str = ""
    # How a context-using task lays its chunks out in the student's prompt; the caller passes
    # the same RAG block its retrieval setups show at inference (None: a plain default).
    format_context: Callable[[list[Chunk]], str] | None = None
    # A labelling task's allowed labels, and the label the corpus's structure gives this
    # chunk (its folder, title or section; "" when the labels come from the user's list)
    labels: tuple[str, ...] = ()
    label: str = ""
    paraphrases: int = 3  # phrasings per fact (the knowledge task)
    reasoning: bool = True  # raft rows: the quoted evidence before "Answer:" (False: answer only)


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cached_calls: int = 0

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.calls += other.calls
        self.cached_calls += other.cached_calls


@dataclass
class JobResult:
    """What a job produced: parsed items, or the reason it failed; rejects keep raw text."""

    items: list[BaseModel] = field(default_factory=list)
    error: str | None = None
    rejects: list[dict[str, str]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)


OnResult = Callable[[Job, JobResult], None]


class Teacher(Protocol):
    uri: str

    def supports(self, task_name: str) -> bool: ...

    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        """Run every job, calling ``on_result`` once per job as soon as it is done."""
        ...

    def close(self) -> None: ...


class CallCache(Protocol):
    """Teacher-call cache (the workspace ledger implements it): resumes killed runs."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: dict[str, Any]) -> None: ...


class MemoryCache:
    """A CallCache in a dict, for tests and one-off runs."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.data.get(key)

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.data[key] = value


def call_key(model: str, messages: list[dict[str, str]], params: dict[str, Any]) -> str:
    """The cache key of a call: the hash of model, messages and parameters (never the key)."""
    blob = json.dumps([model, messages, params], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()
