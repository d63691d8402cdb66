"""Teachers by URI prefix, one registry: ``get_teacher("openai:gpt-4o-mini", ...)``.

``hf:`` and ``smollm2`` join when ``loop.models.students`` is imported (it owns model loading).

Built-ins register exactly as an outside plugin would, through ``register_teacher``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from generators.errors import UnknownTeacherError
from generators.teachers.base import CallCache, Chunk, Job, JobResult, MemoryCache, Teacher, Usage

Factory = Callable[..., Teacher]
_REGISTRY: dict[str, Factory] = {}
_NO_MODEL: set[str] = set()  # prefixes that are a whole URI on their own (rules, smollm2)


def register_teacher(prefix: str, factory: Factory, *, needs_model: bool = True) -> None:
    """Add a teacher kind. ``needs_model=False``: the bare prefix names one model."""
    _REGISTRY[prefix] = factory
    if needs_model:
        _NO_MODEL.discard(prefix)
    else:
        _NO_MODEL.add(prefix)


def known_prefixes() -> list[str]:
    return sorted(_REGISTRY)


def get_teacher(uri: str, **options: Any) -> Teacher:
    """Build the teacher a URI names; options the backend does not take are ignored."""
    prefix, _, rest = uri.partition(":")
    if prefix not in _REGISTRY:
        raise UnknownTeacherError(
            f"unknown teacher {uri!r}: known prefixes are "
            + ", ".join(f"'{p}:'" if p not in _NO_MODEL else f"'{p}'" for p in known_prefixes())
        )
    if prefix not in _NO_MODEL and not rest:
        raise UnknownTeacherError(f"teacher {uri!r} names no model (write {prefix}:MODEL)")
    return _REGISTRY[prefix](rest, **options)


def _openai(model: str, **options: Any) -> Teacher:
    from generators.teachers.openai import OpenAITeacher

    keep = {"base_url", "api_key", "concurrency", "timeout", "total_timeout", "max_retries",
            "backoff", "cache", "params", "max_reply_kb"}
    return OpenAITeacher(model, **{k: v for k, v in options.items() if k in keep})


def _rules(_: str, **options: Any) -> Teacher:
    from generators.teachers.rules import RulesTeacher

    return RulesTeacher()


register_teacher("openai", _openai)
register_teacher("rules", _rules, needs_model=False)
# ``hf:`` and ``smollm2`` (local transformers models) are registered by synthloop's model
# loader, loop/models/students.py, which hands the teacher its loader.

__all__ = ["CallCache", "Chunk", "Job", "JobResult", "MemoryCache", "Teacher", "Usage",
           "get_teacher", "known_prefixes", "register_teacher"]
