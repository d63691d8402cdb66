"""``synthloop retrieval-eval``: recall@k, MRR@10 and nDCG@10 of every method on a gold set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from loop.cli import app
from loop.cli.common import (
    DEFAULT_WS,
    ConfigOpt,
    JsonOpt,
    WorkspaceOpt,
    emit_json,
    say,
    stage_sink,
    stdout_console,
    verb,
    weights_text,
)
from loop.cli.flags import config_flags, prefer_option, source_weights
from loop.config import resolve
from loop.errors import InputError
from loop.index import IndexConfig, evaluate_retrieval
from loop.stages import read_config_file
from loop.workspace import Workspace


@app.command("retrieval-eval")
@config_flags(IndexConfig, only=("reranker",))
def retrieval_eval(
    overrides: dict,
    eval_set: Annotated[Path, typer.Option(
        "--eval-set", help='Gold questions: JSONL ({"question", "answers": [...], "doc"}) '
        "or SQuAD-format JSON.")],
    prefer: prefer_option(IndexConfig) = None,
    k: Annotated[str, typer.Option("--k", help="Cut-offs for recall, comma-separated.")] = "1,5,10,20",
    workspace: WorkspaceOpt = DEFAULT_WS,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score every retrieval method (bm25, dense, hybrid ...) on a gold question set.

    A question's evidence is its chunk ids when given, else any retrieved text holding a
    gold answer (within its named document, if any). With source weights (--prefer or the
    index's), preferred@1 is the share of first hits from a preferred source and changed@1
    the share the weights changed.
    """
    with verb(as_json):
        ks = _cutoffs(k)
        table = read_config_file(config).get("index")
        cfg = resolve(IndexConfig, table) if table else None
        with Workspace(workspace, create=False) as ws, stage_sink() as sink:
            result = evaluate_retrieval(ws, eval_set, ks, cfg, emit=sink, **overrides,
                                        source_weights=source_weights(prefer))
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
    title = f"{result['questions']} questions, default: {result['default']}"
    if result.get("source_weights"):
        title += f"; preferred sources: {weights_text(result['source_weights'])}"
    table = Table(title=Text(title))
    table.add_column("method")
    for c in columns:
        table.add_column(Text(c), justify="right")
    for name, figures in methods.items():
        table.add_row(Text(name), *(f"{figures[c]:g}" for c in columns))
    stdout_console.print(table)
    for line in result.get("skipped_lines", []):
        say(("skipped", "yellow"), " ", line)
