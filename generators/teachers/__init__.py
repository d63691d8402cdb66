"""Teachers by URI prefix, one registry: ``get_teacher("openai:gpt-4o-mini", ...)``.

Built-ins register exactly as an outside plugin would, through ``register_teacher``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from generators.errors import UnknownTeacherError
from generators.teachers.base import CallCache, Chunk, Job, JobResult, MemoryCache, Teacher, Usage

Factory = Callable[..., Teacher]
_REGISTRY: dict[str, Factory] = {}


def register_teacher(prefix: str, factory: Factory) -> None:
    _REGISTRY[prefix] = factory


def known_prefixes() -> list[str]:
    return sorted(_REGISTRY)


def get_teacher(uri: str, **options: Any) -> Teacher:
    """Build the teacher a URI names; options the backend does not take are ignored."""
    prefix, _, rest = uri.partition(":")
    if prefix not in _REGISTRY:
        raise UnknownTeacherError(
            f"unknown teacher {uri!r}: known prefixes are "
            + ", ".join(f"'{p}:'" if p != "rules" else "'rules'" for p in known_prefixes())
        )
    if prefix != "rules" and not rest:
        raise UnknownTeacherError(f"teacher {uri!r} names no model (write {prefix}:MODEL)")
    return _REGISTRY[prefix](rest, **options)


def _openai(model: str, **options: Any) -> Teacher:
    from generators.teachers.openai import OpenAITeacher

    keep = {"base_url", "api_key", "concurrency", "timeout", "max_retries", "backoff", "cache", "params"}
    return OpenAITeacher(model, **{k: v for k, v in options.items() if k in keep})


def _hf(model: str, **options: Any) -> Teacher:
    from generators.teachers.hf import HFTeacher

    keep = {"batch_size", "device", "dtype", "trust_remote_code", "allow_pickle", "cache", "params"}
    return HFTeacher(model, **{k: v for k, v in options.items() if k in keep})


def _rules(_: str, **options: Any) -> Teacher:
    from generators.teachers.rules import RulesTeacher

    return RulesTeacher()


register_teacher("openai", _openai)
register_teacher("hf", _hf)
register_teacher("rules", _rules)

__all__ = ["CallCache", "Chunk", "Job", "JobResult", "MemoryCache", "Teacher", "Usage",
           "get_teacher", "known_prefixes", "register_teacher"]
