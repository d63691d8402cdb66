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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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


class IngestConfig(StageConfig):
    """How documents become chunks."""

    section: ClassVar[str] = "ingest"

    # follow_symlinks changes which files are found, not how they are chunked: the corpus id
    # already follows from the documents it holds.
    execution_only: ClassVar[frozenset[str]] = frozenset({"workers", "follow_symlinks"})

    chunk_tokens: int = Field(
        220, ge=16, le=8192,
        description="Token budget of one chunk (estimated as words x tokens_per_word); "
        "the default fits the default embedder's 256-token window.",
    )
    overlap_tokens: int = Field(
        32, ge=0, le=4096, description="Tokens of the previous chunk repeated at the start of the next."
    )
    min_chunk_tokens: int = Field(
        24, ge=0, description="A section shorter than this is merged with the next one."
    )
    tokens_per_word: float = Field(
        1.3, gt=0.5, le=4.0,
        description="Estimated tokens per whitespace word (1.3 fits WordPiece/BPE on English prose).",
    )
    tokenizer: str = Field(
        "st:all-MiniLM-L6-v2",
        description="The embedder whose tokenizer measures every chunk, so none overflows "
        "its window (st:NAME, or a folder with tokenizer.json; '' estimates from words). "
        "synthloop run sets it to the index's embedder.",
    )
    max_file_mb: float = Field(
        256.0, gt=0, description="Files larger than this are skipped with a reason."
    )
    workers: int = Field(
        0, ge=0, le=64,
        description="Processes that parse and chunk in parallel (0: one per core; "
        "small runs stay in one process).",
    )
    follow_symlinks: bool = Field(
        False, description="Follow symlinks whose target lies outside the folder given "
        "(by default they are skipped with the reason).",
    )

    @model_validator(mode="after")
    def _overlap_below_budget(self) -> IngestConfig:
        # an overlap of a whole chunk or more repeats every chunk into the next without end
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError(f"overlap_tokens ({self.overlap_tokens}) must be smaller than "
                             f"chunk_tokens ({self.chunk_tokens})")
        return self


C = TypeVar("C", bound=StageConfig)


# the section of `synthloop run`'s config with the [train] keys the combined (context-trained)
# adapter sets apart from the tuned one (RunConfigs.combined)
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
