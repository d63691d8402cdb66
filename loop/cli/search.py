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
    field_help,
    verb,
)
from loop.config import read_config_file, resolve
from loop.index import IndexConfig, load_retriever
from loop.workspace import Workspace

PREVIEW_CHARS = 240


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[
        int | None, typer.Option("-k", "--k", help=field_help(IndexConfig, "k"), show_default=False)
    ] = None,
    method: Annotated[
        str | None, typer.Option(help=field_help(IndexConfig, "method"), show_default=False)
    ] = None,
    reranker: Annotated[
        str | None, typer.Option(help=field_help(IndexConfig, "reranker"), show_default=False)
    ] = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search the workspace's index: bm25, dense or the hybrid of both."""
    with verb(as_json):
        table = read_config_file(config).get("index")
        cfg = resolve(IndexConfig, table) if table else None
        with Workspace(workspace, create=False) as ws:
            retriever = load_retriever(ws, cfg, k=k, method=method, reranker=reranker)
            hits = retriever.search(query)
        if as_json:
            emit_json({"query": query, "method": retriever.cfg.method,
                       "hits": [h.as_dict() for h in hits]})
            return
        _print(hits)


def _print(hits: list) -> None:
    if not hits:
        console.print("no hits")
        return
    table = Table(show_lines=True)
    for name, style in (("#", "dim"), ("score", ""), ("source", "cyan"), ("text", "")):
        table.add_column(name, style=style or None, overflow="fold")
    for n, h in enumerate(hits, 1):
        text = " ".join(h.text.split())
        if len(text) > PREVIEW_CHARS:
            text = text[:PREVIEW_CHARS] + " ..."
        # a chunk, its file name and its title are the documents' text: never markup
        table.add_row(str(n), f"{h.score:.4f}", Text(f"{h.source}\n{h.title}"), Text(text))
    # The table goes to stdout: it is the verb's output, unlike progress.
    from rich.console import Console

    Console().print(table)
