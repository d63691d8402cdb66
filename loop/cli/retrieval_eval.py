"""``synthloop retrieval-eval``: recall@k, MRR@10 and nDCG@10 of every method on a gold set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from loop.cli import app
from loop.cli.common import (
    DEFAULT_WS,
    ConfigOpt,
    JsonOpt,
    WorkspaceOpt,
    emit_json,
    stage_sink,
    verb,
)
from loop.cli.flags import config_flags
from loop.config import read_config_file, resolve
from loop.errors import InputError
from loop.index import IndexConfig, evaluate_retrieval
from loop.workspace import Workspace


@app.command("retrieval-eval")
@config_flags(IndexConfig, only=("reranker",))
def retrieval_eval(
    overrides: dict,
    eval_set: Annotated[Path, typer.Option(
        "--eval-set", help='Gold questions: JSONL ({"question", "answers": [...], "doc"}) '
        "or SQuAD-format JSON.")],
    k: Annotated[str, typer.Option("--k", help="Cut-offs for recall, comma-separated.")] = "1,5,10,20",
    workspace: WorkspaceOpt = DEFAULT_WS,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score every retrieval method (bm25, dense, hybrid ...) on a gold question set.

    A question's evidence is its chunk ids when given, else any retrieved text holding a
    gold answer (within its named document, if any).
    """
    with verb(as_json):
        ks = _cutoffs(k)
        table = read_config_file(config).get("index")
        cfg = resolve(IndexConfig, table) if table else None
        with Workspace(workspace, create=False) as ws, stage_sink() as sink:
            result = evaluate_retrieval(ws, eval_set, ks, cfg, emit=sink, **overrides)
        if as_json:
            emit_json(result)
            return
        _print(result)


def _cutoffs(text: str) -> list[int]:
    try:
        ks = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise InputError(f"--k takes comma-separated integers, not '{text}'") from None
    if not ks or ks[0] < 1:
        raise InputError(f"--k takes positive integers, not '{text}'")
    return ks


def _print(result: dict) -> None:
    methods = result["methods"]
    columns = list(next(iter(methods.values())))
    table = Table(title=Text(f"{result['questions']} questions, default: {result['default']}"))
    table.add_column("method")
    for c in columns:
        table.add_column(Text(c), justify="right")
    for name, figures in methods.items():
        table.add_row(Text(name), *(f"{figures[c]:g}" for c in columns))
    Console().print(table)
