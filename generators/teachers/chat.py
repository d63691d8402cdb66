"""Chat teachers: prompt a model, cache every call, parse against the task schema, repair once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from generators.parsing import ParseFailure
from generators.teachers.base import (
    CallCache,
    Job,
    JobResult,
    MemoryCache,
    OnResult,
    Usage,
    call_key,
)

REPAIR_PROMPT = (
    "Your reply could not be used: {error}\n"
    "Reply again with only the JSON object the instructions ask for, nothing else."
)


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


Messages = list[dict[str, str]]
OnDone = Callable[[int, "Completion | Exception"], None]


class ChatTeacher:
    """Base of model-backed teachers; subclasses implement ``complete_many``."""

    uri = "chat"

    def __init__(self, model: str, *, cache: CallCache | None = None,
                 params: dict[str, Any] | None = None) -> None:
        self.model = model
        self.cache = cache or MemoryCache()
        self.params = {"temperature": 0.0, "max_tokens": 768, "seed": 0, **(params or {})}

    def supports(self, task_name: str) -> bool:
        return True

    def close(self) -> None:
        pass

    def complete_many(self, requests: Sequence[Messages], on_done: OnDone) -> None:
        """Send every request; call ``on_done(index, Completion | Exception)`` as each ends."""
        raise NotImplementedError

    def complete(self, messages: Messages) -> Completion:
        """One call, through the cache (used by the judge filter)."""
        out: list[Completion | Exception] = []
        self._cached_many([messages], lambda i, r, u: out.append(r))
        if isinstance(out[0], Exception):
            raise out[0]
        return out[0]

    def complete_all(self, requests: Sequence[Messages]) -> list[Completion | Exception]:
        """Many calls through the cache, results in request order (the eval's judge)."""
        out: list[Completion | Exception | None] = [None] * len(requests)

        def done(i: int, result: Completion | Exception, usage: Usage) -> None:
            out[i] = result

        self._cached_many(requests, done)
        return out  # type: ignore[return-value]

    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        firsts = [job.task.messages(job) for job in jobs]
        repairs: list[tuple[Job, Messages, Usage]] = []

        def first_done(i: int, result: Completion | Exception, usage: Usage) -> None:
            job = jobs[i]
            if isinstance(result, Exception):
                on_result(job, JobResult(error=_reason(result), usage=usage))
                return
            try:
                on_result(job, JobResult(items=job.task.parse(result.text, job), usage=usage))
            except ParseFailure as e:
                fix = [*firsts[i], {"role": "assistant", "content": result.text},
                       {"role": "user", "content": REPAIR_PROMPT.format(error=e)}]
                repairs.append((job, fix, usage))

        self._cached_many(firsts, first_done)
        if not repairs:
            return

        def repair_done(i: int, result: Completion | Exception, usage: Usage) -> None:
            job, _, first_usage = repairs[i]
            usage.add(first_usage)
            if isinstance(result, Exception):
                on_result(job, JobResult(error=_reason(result), usage=usage))
                return
            try:
                on_result(job, JobResult(items=job.task.parse(result.text, job), usage=usage))
            except ParseFailure as e:
                reject = {"reason": "parse_error", "detail": str(e)[:500], "raw": result.text[:4000]}
                on_result(job, JobResult(rejects=[reject], usage=usage))

        self._cached_many([fix for _, fix, _ in repairs], repair_done)

    def _cached_many(self, requests: Sequence[Messages],
                     done: Callable[[int, Completion | Exception, Usage], None]) -> None:
        keys = [call_key(self.uri, m, self.params) for m in requests]
        todo = []
        for i, key in enumerate(keys):
            hit = self.cache.get(key)
            if hit is not None:
                done(i, Completion(**hit), Usage(hit["prompt_tokens"], hit["completion_tokens"], 0, 1))
            else:
                todo.append(i)

        def fresh(j: int, result: Completion | Exception) -> None:
            i = todo[j]
            if isinstance(result, Completion):
                self.cache.put(keys[i], result.__dict__.copy())
                usage = Usage(result.prompt_tokens, result.completion_tokens, 1, 0)
            else:
                usage = Usage(calls=1)
            done(i, result, usage)

        if todo:
            self.complete_many([requests[i] for i in todo], fresh)


def _reason(e: Exception) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
