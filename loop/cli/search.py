"""``synthloop search``: the hits of one query, as a table or JSON."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from loop.cli import app
from loop.cli.common import DEFAULT_WS, ConfigOpt, JsonOpt, WorkspaceOpt, console, emit_json, verb
from loop.cli.flags import config_flags
from loop.config import read_config_file, resolve
from loop.index import IndexConfig, load_retriever
from loop.workspace import Workspace

PREVIEW_CHARS = 240


@app.command()
@config_flags(IndexConfig, only=("k", "method", "reranker"), decls={"k": ("-k", "--k")})
def search(
    overrides: dict,
    query: Annotated[str, typer.Argument(help="What to look for.")],
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
            retriever = load_retriever(ws, cfg, **overrides)
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
