"""Every stage in one explicit table, and one root config with a section per stage.

:class:`RunConfig` is the configuration of a whole run: the ``[ingest]`` ... ``[eval]``
sections of a config file, each the stage's own config model (``loop/<stage>/config.py``),
and ``[combined]``. ``synthloop run`` builds it from the file and its flags, each verb
takes its own section of it, :func:`read_config_file` checks a file against it, and the
dashboard's forms take their models from it. Reading it imports the config modules only,
never a stage.

:func:`stages` lists each stage's verb, config model and entry function; a new stage is a
package (``config.py`` and a lazy ``run``) and one field of :class:`RunConfig` plus one row
there.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loop.config import COMBINED, StageConfig, resolve
from loop.errors import ConfigError
from loop.eval.config import EvalConfig
from loop.generate.config import GenerateConfig
from loop.index.config import IndexConfig
from loop.ingest.config import IngestConfig
from loop.train.config import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SECTIONS = ("ingest", "generate", "index", "train", "eval")  # in the order a run calls them


class RunConfig(BaseModel):
    """A whole run's configuration: one section per stage, in run order, and the
    ``[combined]`` keys."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    ingest: IngestConfig = Field(default_factory=IngestConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    # [train] keys the combined (context-trained) adapter sets apart from the tuned one: its
    # raft rows are long and one per fact, so it is sized by steps where tuned is by exposures
    combined: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def section_model(cls, name: str) -> type[StageConfig]:
        """The config model of section ``name`` (``[combined]`` is checked as ``[train]``)."""
        field = cls.model_fields.get("train" if name == COMBINED else name)
        if field is None:
            known = ", ".join([*SECTIONS, COMBINED])
            raise ConfigError(f"unknown section [{name}] (known: {known})")
        return field.annotation  # type: ignore[return-value]

    @classmethod
    def from_tables(cls, tables: dict[str, dict[str, Any]], **flags: dict[str, Any]) -> RunConfig:
        """Each section from its config-file table, then the flags given for it
        (``{"train": {"student": ...}}``; None values are not given). A bad key or value is
        a ConfigError naming its section."""
        cfg = cls(**{name: resolve(cls.section_model(name), tables.get(name), **flags.get(name, {}))
                     for name in SECTIONS},
                  combined=dict(tables.get(COMBINED) or {}))
        given = {**(tables.get("ingest") or {}), **flags.get("ingest", {})}
        if given.get("tokenizer") is None and cfg.index.embedder != cfg.ingest.tokenizer:
            # chunks are measured by the tokenizer of the embedder that will index them
            tok = cfg.index.embedder if cfg.index.embedder.startswith("st:") else ""
            cfg.ingest = cfg.ingest.model_copy(update={"tokenizer": tok})
        return cfg

    @classmethod
    def from_file(cls, path: str | Path | None, **flags: dict[str, Any]) -> RunConfig:
        """:meth:`from_tables` of a TOML file (None: defaults and flags only)."""
        return cls.from_tables(read_config_file(path), **flags)


@dataclass(frozen=True)
class Stage:
    name: str  # the verb, the config file's [section] and the package under loop/
    config: type[StageConfig]
    summary: str

    @property
    def run(self) -> Callable[..., Any]:
        """The stage's entry (``loop.<name>.run``), imported on first use: the stage
        modules load datasets, torch or the readers, and a config read must not."""
        import importlib

        return importlib.import_module(f"loop.{self.name}").run


SUMMARIES = {
    "ingest": "files and folders -> chunked corpus",
    "generate": "corpus -> synthetic dataset (teacher, filters)",
    "index": "corpus -> retrieval index (BM25 + FAISS)",
    "train": "dataset -> tuned model (LoRA, RAFT, DPO)",
    "eval": "every setup on one question set -> scores and verdict",
}


@cache
def stages() -> dict[str, Stage]:
    """The table, in run order: one row per section of :class:`RunConfig`."""
    return {name: Stage(name, RunConfig.section_model(name), SUMMARIES[name]) for name in SECTIONS}


def stage_of(model: type[StageConfig]) -> str | None:
    """The [section] name of a config model, or None."""
    return next((s.name for s in stages().values() if s.config is model), None)


def read_config_file(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """Read a TOML config file into ``{stage: {key: value}}``, rejecting unknown tables."""
    if path is None:
        return {}
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"config file not found: {path}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e
    for stage, table in data.items():
        try:
            model = RunConfig.section_model(stage)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{stage}] must be a table of keys")
        if stage == COMBINED:  # [train] keys the combined adapter sets apart; checked over [train]
            table = {**(data.get("train") or {}), **table}
        resolve(model, table)  # every section is checked, not only the verb's own
    return data
