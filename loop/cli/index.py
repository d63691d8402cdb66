"""``synthloop index``: build or update the BM25 and FAISS indexes of the corpus."""

from __future__ import annotations

from typing import Annotated

import typer

from loop.cli import app
from loop.cli.common import (
    DEFAULT_WS,
    ConfigOpt,
    JsonOpt,
    WorkspaceOpt,
    console,
    emit_json,
    field_help,
    say,
    verb,
)
from loop.config import read_config_file, resolve
from loop.index import IndexConfig, build_index
from loop.render import RichSink
from loop.workspace import Workspace


@app.command()
def index(
    embedder: Annotated[
        str | None, typer.Option(help=field_help(IndexConfig, "embedder"), show_default=False)
    ] = None,
    dense_kind: Annotated[
        str | None, typer.Option(help=field_help(IndexConfig, "dense_kind"), show_default=False)
    ] = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build or update the BM25 and dense indexes of the workspace's corpus.

    An unchanged corpus is a cache hit; a changed one embeds only its new or changed text.
    """
    with verb(as_json):
        cfg = resolve(IndexConfig, read_config_file(config).get("index"),
                      embedder=embedder, dense_kind=dense_kind)
        sink = RichSink(console)
        with Workspace(workspace) as ws:
            try:
                result = build_index(ws, cfg, emit=sink)
            finally:
                sink.close()
        summary = result.summary()
        if as_json:
            emit_json(summary)
            return
        state = "unchanged (cache hit)" if summary["cached"] else "written"
        say((f"index {summary['index_id']}", "bold green"),
            f" {state}: {summary['chunks']} chunks, "
            f"{summary['units']} sentence units ({summary['embedded']} embedded, "
            f"{summary['reused']} reused) in {summary['seconds']:.1f} s")
        say(f"index at {summary['index_path']}")
