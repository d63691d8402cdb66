"""Every stage in one explicit table: its verb and ``[section]``, its config model, and the
function that runs it. ``read_config_file`` checks every section of a file against it; the
CLI and the dashboard build their flags and forms from the config models listed here.

Each stage package exports the same three names (``from loop.<stage> import <X>Config,
run, <X>Result``); a new stage is a package and one row here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from loop.config import COMBINED, StageConfig, resolve
from loop.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Stage:
    name: str  # the verb and the config file's [section]
    config: type[StageConfig]
    run: Callable[..., Any]
    summary: str


@cache
def stages() -> dict[str, Stage]:
    """The table (imported on first use: the stage modules load datasets, ~1 s)."""
    from loop import eval as eval_stage
    from loop import generate, index, ingest, train

    return {s.name: s for s in (
        Stage("ingest", ingest.IngestConfig, ingest.run, "files and folders -> chunked corpus"),
        Stage("generate", generate.GenerateConfig, generate.run,
              "corpus -> synthetic dataset (teacher, filters)"),
        Stage("index", index.IndexConfig, index.run, "corpus -> retrieval index (BM25 + FAISS)"),
        Stage("train", train.TrainConfig, train.run, "dataset -> tuned model (LoRA, RAFT, DPO)"),
        Stage("eval", eval_stage.EvalConfig, eval_stage.run,
              "every setup on one question set -> scores and verdict"),
    )}


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
    known = {**{name: s.config for name, s in stages().items()},
             COMBINED: stages()["train"].config}
    for stage, table in data.items():
        if stage not in known:
            raise ConfigError(f"{path}: unknown section [{stage}] (known: {', '.join(known)})")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{stage}] must be a table of keys")
        if stage == COMBINED:  # [train] keys the combined adapter sets apart; checked over [train]
            table = {**(data.get("train") or {}), **table}
        resolve(known[stage], table)  # every section is checked, not only the verb's own
    return data
