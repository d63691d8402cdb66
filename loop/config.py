"""One small config object per stage, read from a TOML file and overridden by flags.

A config file has one table per stage (``[ingest]``, ``[index]``, ...). Unknown tables or
keys and values of the wrong type are errors that name the key. Flags win over the file;
the resolved config is saved beside every artefact (``resolved()``).
"""

from __future__ import annotations

import hashlib
import json
import types
import typing
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from loop.errors import ConfigError


class StageConfig(BaseModel):
    """Base of every stage config: strict keys, immutable, hashable into an artefact id."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # Fields that change how a stage runs, not what it makes: left out of the digest.
    execution_only: ClassVar[frozenset[str]] = frozenset()
    # Fields added after artefacts were made with their (empty) default: left out of the
    # resolved config, and so of the digest, while empty, so those artefacts keep their ids.
    omit_when_empty: ClassVar[frozenset[str]] = frozenset()
    # The config file's [section] (and the verb) this config is read from.
    section: ClassVar[str] = ""

    @classmethod
    def choices(cls) -> dict[str, list[str]]:
        """Fields whose values come from a registry (tasks, setups, methods): field -> the
        registered names, for ``--help`` and the dashboard's forms."""
        return {}

    def resolved(self) -> dict[str, Any]:
        values = self.model_dump(mode="json")
        return {k: v for k, v in values.items() if v or k not in self.omit_when_empty}

    def digest(self) -> str:
        """A stable hash of the config, part of every artefact id built from it."""
        values = {k: v for k, v in self.resolved().items() if k not in self.execution_only}
        blob = json.dumps(values, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


C = TypeVar("C", bound=StageConfig)


# the section of `synthloop run`'s config with the [train] keys the combined (context-trained)
# adapter sets apart from the tuned one (RunConfig.combined)
COMBINED = "combined"


def resolve(model: type[C], file_table: dict[str, Any] | None = None, **flags: Any) -> C:
    """Build a stage config: defaults, then the file's table, then flags that were given."""
    values = dict(file_table or {})
    values.update({k: v for k, v in flags.items() if v is not None})
    try:
        return model(**values)
    except ValidationError as e:
        raise ConfigError(_describe(model, e)) from e


def _describe(model: type[StageConfig], err: ValidationError) -> str:
    stage = model.section or model.__name__
    parts = []
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"]) or "?"
        if not item["loc"]:  # a check across keys (a model validator): its own words
            parts.append(item["msg"].removeprefix("Value error, "))
        elif item["type"] == "extra_forbidden":
            known = ", ".join(model.model_fields)
            parts.append(f"unknown key '{key}' (known: {known})")
        else:
            msg = item["msg"].removeprefix("Value error, ")  # a field check's own words
            parts.append(f"'{key}': {msg} (got {item.get('input')!r})")
    return f"[{stage}] " + "; ".join(parts)


def field_choices(model: type[StageConfig], name: str) -> list[str]:
    """A field's fixed set of values: its ``Literal`` type, or the model's ``choices()``."""
    values = model.choices().get(name)
    if values:
        return list(values)
    base = strip_optional(model.model_fields[name].annotation)
    if is_list_type(base):
        base = typing.get_args(base)[0] if typing.get_args(base) else str
    if typing.get_origin(base) is Literal:
        return [str(v) for v in typing.get_args(base)]
    return []


def strip_optional(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def is_list_type(annotation: Any) -> bool:
    return annotation is list or typing.get_origin(annotation) is list


def is_simple_type(annotation: Any) -> bool:
    """A field a flag or a form box can set: a scalar, a Literal or a list of strings."""
    base = strip_optional(annotation)
    if is_list_type(base):
        return True
    return base in (bool, int, float, str) or typing.get_origin(base) is Literal
