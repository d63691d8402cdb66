"""``synthloop search``: the hits of one query, as a table or JSON."""

from __future__ import annotations

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
    console,
    emit_json,
    stdout_console,
    verb,
    weights_text,
)
from loop.cli.flags import config_flags, prefer_option, source_weights
from loop.config import resolve
from loop.index import IndexConfig, load_retriever
from loop.stages import read_config_file
from loop.workspace import Workspace

PREVIEW_CHARS = 240


@app.command()
@config_flags(IndexConfig, only=("k", "method", "reranker"), decls={"k": ("-k", "--k")})
def search(
    overrides: dict,
    query: Annotated[str, typer.Argument(help="What to look for.")],
    prefer: prefer_option(IndexConfig) = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search the workspace's index: bm25, dense or the hybrid of both.

    Without flags the index searches as it was built (its k, method and reranker)."""
    with verb(as_json):
        table = read_config_file(config).get("index")
        cfg = resolve(IndexConfig, table) if table else None
        with Workspace(workspace, create=False) as ws:
            retriever = load_retriever(ws, cfg, **overrides, source_weights=source_weights(prefer))
            hits = retriever.search(query)
        if as_json:
            emit_json({"query": query, "method": retriever.cfg.method,
                       "source_weights": retriever.cfg.source_weights,
                       "hits": [h.as_dict() for h in hits]})
            return
        _print(hits, retriever.cfg.source_weights)


def _print(hits: list, weights: dict[str, float]) -> None:
    if not hits:
        console.print("no hits")
        return
    # the weight column only when weights are in use: without them the table is as before
    table = Table(show_lines=True, title=Text(f"preferred sources: {weights_text(weights)}")
                  if weights else None)
    columns = [("#", "dim"), ("score", ""), *([("weight", "")] if weights else []),
               ("source", "cyan"), ("text", "")]
    for name, style in columns:
        table.add_column(name, style=style or None, overflow="fold")
    for n, h in enumerate(hits, 1):
        text = " ".join(h.text.split())
        if len(text) > PREVIEW_CHARS:
            text = text[:PREVIEW_CHARS] + " ..."
        weight = [f"x{h.weight:g}" if h.weight != 1 else ""] if weights else []
        # a chunk, its file name and its title are the documents' text: never markup
        table.add_row(str(n), f"{h.score:.4f}", *weight, Text(f"{h.source}\n{h.title}"),
                      Text(text))
    stdout_console.print(table)  # stdout: it is the verb's output, unlike progress
